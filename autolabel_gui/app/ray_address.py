"""``--ray ADDRESS``, checked before Ray is imported: ``auto``, ``local``, or ``[ray://]HOST:PORT``.

Ray retries a bad address for minutes (``256.1.1.1:99999``: four, deaf to SIGTERM), so an address
that cannot be one (no port, a port outside 1-65535, an IPv4 part over 255, a host name that
does not resolve) is an argparse error naming it.
"""

from __future__ import annotations

import ipaddress
import re
import socket

KEYWORDS = ("auto", "local")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"\A(?=.{{1,253}}\Z){_LABEL}(\.{_LABEL})*\.?\Z")
_DOTTED = re.compile(r"\A[0-9.]+\Z")


def endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of an address, None for ``auto``/``local``; ValueError saying what is wrong.

    The host must resolve here (the driver connects to it); that lookup is the only network use.
    """
    if address in KEYWORDS:
        return None
    rest = address.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{address!r} is not auto, local or HOST:PORT")
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{address!r}: the port must be a number from 1 to 65535")
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{address!r}: {host} is not an IPv6 address") from None
        return host[1:-1], port
    if _DOTTED.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{address!r}: {host} is not an IPv4 address") from None
        return host, port
    if not _HOST_NAME.match(host):
        raise ValueError(f"{address!r}: {host!r} is not a host name")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"{address!r}: cannot resolve the host {host} ({exc})") from None
    return host, port
