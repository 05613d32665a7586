"""The folder's state file, ``.autolabel/cache.sqlite``: three stores of different worth.

- proposals (table ``proposals``): the machine's work, every proposal above a low score floor
  per image identity and run. Recomputable: losing them costs model time only.
- review records (table ``reviews``): the reviewer's decisions that are not boxes, i.e. which
  proposals were rejected and what became of each (prompt stats). Not recomputable: lost,
  the rejected proposals come back for review and ``stats`` forgets those images.
- output digests (table ``outputs``): the sha256 of each VOC file ``label`` wrote, so that it
  replaces only its own untouched work. Lost, ``label`` takes its earlier files for someone
  else's and leaves them as they are.

Accepted boxes are never here (they are in the VOC files). One SQLite file in WAL mode, because
the window and a headless ``label`` run may work on one folder at the same time: readers never
block the writer, and each finished image is its own committed transaction, so a killed run
loses at most the batch in flight. Thresholds are applied at read time by the caller, so moving
a threshold slider never re-runs the model. See docs/decisions/0005-proposal-cache.md.

On a network file system (``core.sharedfs``) WAL cannot work across machines (it needs shared
memory), so the file is opened with a rollback journal (``journal_mode=DELETE``) there and the
log says so; see docs/decisions/0012-shared-folders.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from autolabel_gui.core.atomic import atomic_write_text, make_dir_like_parent
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.folder import STATE_DIR, is_inside
from autolabel_gui.core.records import ImageKey, Outcome, ReviewRecord
from autolabel_gui.core.sharedfs import is_shared_filesystem
from autolabel_gui.core.userdirs import user_cache_dir

log = logging.getLogger(__name__)

CACHE_FILE = "cache.sqlite"
_SCHEMA_VERSION = 2
_CORRUPTION_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_SCHEMA = """
-- proposals: recomputable
CREATE TABLE IF NOT EXISTS proposals (
    relpath TEXT NOT NULL,
    run_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    boxes TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (relpath, run_id)
) WITHOUT ROWID;
-- review records: human decisions
CREATE TABLE IF NOT EXISTS reviews (
    relpath TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
-- output digests: the files label wrote
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL
) WITHOUT ROWID;
"""

T = TypeVar("T")



def _normalised_sql(sql: str) -> str:
    """``sql`` with whitespace runs made one space and none next to ``(``, ``)`` or ``,``."""
    return re.sub(r" ?([(),]) ?", r"\1", " ".join(sql.split()))


def _own_tables(script: str) -> dict[str, str]:
    """Each table's CREATE statement as SQLite keeps it in ``sqlite_master.sql`` (``IF NOT
    EXISTS`` dropped, comments before it left out), whitespace-normalised, by table name."""
    tables: dict[str, str] = {}
    for statement in script.split(";"):
        lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
        words = " ".join(lines).replace("CREATE TABLE IF NOT EXISTS ", "CREATE TABLE ", 1).split()
        if words:
            tables[words[2]] = _normalised_sql(" ".join(words))
    return tables


_OWN_TABLES = _own_tables(_SCHEMA)
"""What this tool puts in the file, each table exactly as ``_SCHEMA`` creates it; anything else (a
view, a trigger, a table of one of these names with other columns: a GENERATED column or a CHECK
runs its SQL on every read or write) came with someone's folder. The tables never changed between
schema versions (version 1 lacked ``outputs``, which the upgrade creates), so a missing table is
allowed and no older text is."""
MAX_ROW_TEXT = 1_000_000
"""Characters one proposals or review-record value may have: a real one is a few kB (the
2,000-box cap of one image's label file, each box under 300 characters, is 600 kB). A longer
value is left out by the query itself (``length(...) <= MAX_ROW_TEXT``) with the warning of a
doctored row, so a 300,000-box row (62 MB of cache) never reaches Python's JSON parser."""
_BAD_RECORD = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError)
"""What decoding a doctored row raises (the cache travels with the folder: untrusted input)."""


def _create_like_folder(path: Path) -> None:
    """An empty cache file (SQLite takes it as a new database) readable and writable by whoever
    may write its folder: ``.autolabel`` made writable for a team gives every annotator the
    cache (under umask 022 the first one's file was 0644, and the others' review records were
    refused); SQLite gives ``-wal`` and ``-shm`` the file's mode. The folder is made like its
    parent (``make_dir_like_parent``)."""
    folder = make_dir_like_parent(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: theirs stands
        return
    try:
        os.fchmod(fd, stat.S_IMODE(folder.stat().st_mode) & 0o666)
    finally:
        os.close(fd)


class UntrustedCache(sqlite3.DatabaseError):
    """The file holds objects this tool never makes (views, triggers, other tables): their SQL
    could run without end on any query, so the file is set aside like a corrupt one."""


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a cache with anything but this tool's tables as this tool creates them, before any
    of its SQL can run (``sqlite_master`` is read as text; nothing of the file's is compiled)."""
    conn.execute("PRAGMA trusted_schema=OFF")
    objects = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    unknown = [f"{kind} {name!r}" + (" with other columns or constraints" if name in _OWN_TABLES else "")
               for kind, name, sql in objects
               if kind != "table" or not isinstance(sql, str) or _OWN_TABLES.get(name) != _normalised_sql(sql)]
    if unknown:
        raise UntrustedCache(f"{path}: not a cache of this tool (it also holds {', '.join(unknown[:3])})")


def proposals_to_json(boxes: list[Box]) -> str:
    """The cache's text for proposals; also how ``label --ray`` workers send them to the driver."""
    return json.dumps([[b.x0, b.y0, b.x1, b.y1, b.label, b.score] for b in boxes], ensure_ascii=False)


def proposals_from_json(text: str) -> list[Box]:
    """Raises ValueError or TypeError for text that is not a list of proposals (a doctored cache)."""
    return [Box(*_corners(x0, y0, x1, y1), _text(label), _score(score), BoxState.PROPOSED)
            for x0, y0, x1, y1, label, score in json.loads(text)]


def _corners(*values: object) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)  # type: ignore[arg-type]  # TypeError/ValueError: not numbers
    return x0, y0, x1, y1


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a class name must be text, not {type(value).__name__}")
    return value


def _score(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _box_to_dict(b: Box) -> dict:
    return {"xyxy": list(b.xyxy), "label": b.label, "score": b.score, "state": b.state.value,
            "difficult": b.difficult, "truncated": b.truncated, "occluded": b.occluded, "pose": b.pose}


def _box_from_dict(d: dict) -> Box:
    return Box(*_corners(*d["xyxy"]), _text(d["label"]), _score(d.get("score")), BoxState(d.get("state", "rejected")),
               d.get("difficult", False), d.get("truncated", False), d.get("occluded", False),
               d.get("pose", "Unspecified"))


def _record_to_json(r: ReviewRecord) -> str:
    data = {"run_id": r.run_id, "rejected": [_box_to_dict(b) for b in r.rejected],
            "outcomes": [[o.label, o.score, o.result] for o in r.outcomes]}
    if r.verified_classes is not None:
        data["verified_classes"] = list(r.verified_classes)
    if r.accepted_by_rule is not None:
        data["accepted_by_rule"] = r.accepted_by_rule
    return json.dumps(data, ensure_ascii=False)


def _record_from_json(text: str) -> ReviewRecord:
    d = json.loads(text)
    classes = d.get("verified_classes")
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        classes = None
    rule = d.get("accepted_by_rule")
    return ReviewRecord(d["run_id"], [_box_from_dict(b) for b in d["rejected"]],
                        [Outcome(*o) for o in d["outcomes"]], classes, rule if isinstance(rule, str) else None)


class ProposalCache:
    """The three stores of the module doc in one SQLite file, one section each below.

    Thread-safe (one connection behind a lock) and process-safe (SQLite locking, WAL). The name
    and the file are kept from when it held proposals only, so existing caches open unchanged.
    """

    def __init__(self, path: Path | str, *, read_only: bool = False, chosen: bool = False) -> None:
        """Open (creating it if needed) the cache at ``path``.

        ``read_only`` is for reports (``stats``): the file is opened with SQLite's ``mode=ro``
        (``immutable=1`` when even that needs a write, as WAL does in a read-only folder),
        nothing is created, and a corrupt file raises ``sqlite3.DatabaseError`` instead of
        being moved aside: a reading command never changes the dataset. ``chosen``: the user
        named this file (``label --cache``), so it is not a folder's untrusted file and its
        schema is not checked; any other cache holding views or triggers is set aside.
        """
        self.path = Path(path)
        self.read_only = read_only
        self.chosen = chosen
        self.moved_aside: Path | None = None
        self._lock = threading.RLock()
        self.shared = False
        """On a network file system: a rollback journal instead of WAL (set when opened)."""
        self.journal_mode = ""
        """What SQLite says the file's journal mode is (``wal``, or ``delete`` when shared)."""
        if read_only:
            self._conn = self._connect_read_only()
            return
        existed = self.path.exists()
        try:
            if not existed:
                _create_like_folder(self.path)
            self._conn = self._open()
        except BaseException:
            if not existed:  # a full disk: no empty cache.sqlite left to puzzle over
                for suffix in ("", "-wal", "-shm", "-journal"):
                    try:
                        os.unlink(self.path.with_name(self.path.name + suffix))
                    except OSError:
                        pass
            raise

    @classmethod
    def for_folder(cls, root: Path | str) -> ProposalCache:
        """``root/.autolabel/cache.sqlite``, or a per-user cache dir when the folder is read-only
        or its cache leads out of it (a link to another project's cache or database is never
        opened, let alone written)."""
        root = Path(root)
        path = root / STATE_DIR / CACHE_FILE
        try:
            if not is_inside(path, root):
                raise OSError(f"{path} leads outside the folder (a symbolic link); not used")
            return cls(path)
        except (OSError, sqlite3.Error) as exc:
            digest = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:16]
            fallback = user_cache_dir() / digest
            log.warning("%s: cannot keep the proposal cache in the folder (%s); using %s", root, exc, fallback)
            fallback.mkdir(parents=True, exist_ok=True)
            atomic_write_text(fallback / "folder.txt", f"{root.resolve()}\n")
            return cls(fallback / CACHE_FILE)

    # -- connection management -------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not isinstance(exc, UntrustedCache) and getattr(exc, "sqlite_errorcode", None) not in _CORRUPTION_CODES:
                raise
            self._move_aside(exc)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            if not self.chosen:
                _check_schema(conn, self.path)
            self.shared = is_shared_filesystem(self.path.parent)
            wanted = "delete" if self.shared else "wal"
            self.journal_mode = str(conn.execute(f"PRAGMA journal_mode={wanted}").fetchone()[0]).lower()
            conn.execute("PRAGMA synchronous=FULL" if self.shared else "PRAGMA synchronous=NORMAL")
            if self.shared:
                log.info("%s: on a network file system; SQLite opened with journal_mode=%s (not WAL, which "
                         "needs memory shared between the processes)", self.path, self.journal_mode)
            if self.journal_mode != wanted:
                log.warning("%s: journal_mode is %s, not %s (another process holds it open in that mode)",
                            self.path, self.journal_mode, wanted)
            if conn.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                conn.executescript(_SCHEMA + f"PRAGMA user_version={_SCHEMA_VERSION};")
            conn.execute("SELECT count(*) FROM reviews").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise sqlite3.OperationalError(f"{self.path}: no such cache file")
        uri = self.path.absolute().as_uri()
        last: sqlite3.Error | None = None
        for options in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?{options}", uri=True, timeout=5.0, check_same_thread=False,
                                       isolation_level=None)
            except sqlite3.Error as exc:
                last = exc
                continue
            try:
                if not self.chosen:
                    _check_schema(conn, self.path)
                conn.execute("PRAGMA query_only=1")
                if conn.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"{self.path}: a cache of an older version (not read)")
                conn.execute("SELECT count(*) FROM reviews").fetchone()
            except sqlite3.DatabaseError as exc:
                conn.close()
                if (isinstance(exc, UntrustedCache) or getattr(exc, "sqlite_errorcode", None) in _CORRUPTION_CODES
                        or "older version" in str(exc)):
                    raise
                last = exc
                continue
            return conn
        assert last is not None
        raise last

    def _move_aside(self, exc: Exception) -> None:
        """Keep the broken file for inspection and start afresh: the model redoes the proposals;
        the review records and output digests stay in the moved file only (see the module doc)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        self.moved_aside = aside
        log.warning("%s: proposal cache is corrupt (%s); moved it to %s and started a new one "
                    "(rejected proposals may be shown again)", self.path, exc, aside)

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run one operation; a cache found corrupt mid-session is moved aside and the op retried."""
        with self._lock:
            try:
                return op(self._conn)
            except sqlite3.DatabaseError as exc:
                if self.read_only or getattr(exc, "sqlite_errorcode", None) not in _CORRUPTION_CODES:
                    raise
                self._conn.close()
                self._move_aside(exc)
                self._conn = self._connect()
                return op(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ProposalCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- proposals: the machine's work, recomputable -----------------------------------------

    def get(self, key: ImageKey, run_id: str) -> list[Box] | None:
        """Proposals for this exact file and run, or None (never computed, or the file changed)."""
        row = self._run(lambda c: c.execute(
            "SELECT size, mtime_ns, CASE WHEN length(boxes) <= ? THEN boxes END FROM proposals "
            "WHERE relpath=? AND run_id=?", (MAX_ROW_TEXT, key.relpath, run_id)).fetchone())
        if row is None or (row[0], row[1]) != (key.size, key.mtime_ns):
            return None
        try:
            if row[2] is None:
                raise ValueError(f"longer than {MAX_ROW_TEXT:,} characters")
            return proposals_from_json(row[2])
        except _BAD_RECORD as exc:  # a doctored row: computed again, as if never cached
            log.warning("%s: proposals of %s not read (%s); detecting again", self.path, key.relpath, exc)
            return None

    def put(self, key: ImageKey, run_id: str, boxes: list[Box]) -> None:
        """Store (committed at once) the proposals of one image, replacing a stale entry."""
        data = proposals_to_json(boxes)
        self._run(lambda c: c.execute(
            "INSERT OR REPLACE INTO proposals(relpath, run_id, size, mtime_ns, boxes, created_ns) "
            "VALUES (?, ?, ?, ?, ?, ?)", (key.relpath, run_id, key.size, key.mtime_ns, data, time.time_ns())))

    def invalidate(self, relpath: str) -> None:
        """Forget every run's proposals for one image (the R key: detect again)."""
        self._run(lambda c: c.execute("DELETE FROM proposals WHERE relpath=?", (relpath,)))

    def cached_relpaths(self, run_id: str) -> set[str]:
        """Images with proposals for this run (file identity not re-checked: ``get`` does that)."""
        rows = self._run(lambda c: c.execute("SELECT relpath FROM proposals WHERE run_id=?", (run_id,)).fetchall())
        return {r[0] for r in rows}

    def relpaths_with_proposals(self) -> set[str]:
        """Images with proposals of any run: what a report may say without knowing the model."""
        rows = self._run(lambda c: c.execute("SELECT DISTINCT relpath FROM proposals").fetchall())
        return {r[0] for r in rows}

    # -- review records: human decisions, not recomputable -----------------------------------
    # ``invalidate`` (the R key) keeps them, so a rejected box never comes back after re-detection.

    def put_review(self, relpath: str, record: ReviewRecord) -> None:
        data = _record_to_json(record)
        self._run(lambda c: c.execute(
            "INSERT OR REPLACE INTO reviews(relpath, record, updated_ns) VALUES (?, ?, ?)",
            (relpath, data, time.time_ns())))

    def get_review(self, relpath: str) -> ReviewRecord | None:
        row = self._run(lambda c: c.execute(
            "SELECT CASE WHEN length(record) <= ? THEN record END FROM reviews WHERE relpath=?",
            (MAX_ROW_TEXT, relpath)).fetchone())
        return None if row is None else self._record(relpath, row[0])

    def verified_classes(self) -> dict[str, list[str]]:
        """Per image, the class list of its last verification (``ReviewRecord.verified_classes``)
        where a record keeps one: read by SQLite's JSON functions, so a window opening a folder
        of 20,000 reviewed images does not build 20,000 records to find them (7 s in Python)."""
        rows = self._run(lambda c: c.execute(
            "SELECT relpath, json_extract(record, '$.verified_classes') FROM reviews "
            "WHERE length(record) <= ? AND json_valid(record) AND json_type(record, '$.verified_classes') = 'array'",
            (MAX_ROW_TEXT,)).fetchall())
        out: dict[str, list[str]] = {}
        for relpath, text in rows:
            try:
                classes = json.loads(text)
            except (ValueError, RecursionError):
                continue
            if isinstance(classes, list) and all(isinstance(c, str) for c in classes):
                out[str(relpath)] = classes
        return out

    def iter_reviews(self) -> Iterator[tuple[str, ReviewRecord]]:
        rows = self._run(lambda c: c.execute(
            "SELECT relpath, CASE WHEN length(record) <= ? THEN record END FROM reviews ORDER BY relpath",
            (MAX_ROW_TEXT,)).fetchall())
        for relpath, text in rows:
            record = self._record(relpath, text)
            if record is not None:
                yield relpath, record

    def _record(self, relpath: str, text: str | None) -> ReviewRecord | None:
        """A review record, or None (with a warning naming it) when the row is not one; ``text``
        None: the query left out a value over ``MAX_ROW_TEXT``."""
        if text is None:
            log.warning("%s: review record of %s not read (longer than %s characters); its decisions are not known",
                        self.path, relpath, f"{MAX_ROW_TEXT:,}")
            return None
        try:
            return _record_from_json(text)
        except _BAD_RECORD as exc:
            log.warning("%s: review record of %s not read (%s); its decisions are not known", self.path, relpath,
                        type(exc).__name__)
            return None

    # -- output digests: the files ``label`` wrote, its licence to replace them --------------

    def put_output(self, path: Path | str, sha256: str) -> None:
        """Remember the digest of a file this tool wrote, so it may later replace its own work."""
        self._run(lambda c: c.execute("INSERT OR REPLACE INTO outputs(path, sha256) VALUES (?, ?)",
                                      (str(Path(path).resolve()), sha256)))

    def output_digests(self) -> set[str]:
        """The sha256 of every file ``label`` wrote, for the file list's statuses. By content,
        not path: the GPU box that ran ``label`` may mount the shared folder elsewhere."""
        rows = self._run(lambda c: c.execute("SELECT sha256 FROM outputs").fetchall())
        return {str(r[0]) for r in rows}

    def wrote(self, sha256: str) -> bool:
        """``label`` wrote a file with exactly these bytes (under any mount path of the folder)."""
        return self._run(lambda c: c.execute("SELECT 1 FROM outputs WHERE sha256=? LIMIT 1",
                                             (sha256,)).fetchone()) is not None
