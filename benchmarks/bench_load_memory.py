"""Peak memory of a model load: the plain way (build, read, copy), ``lean_load`` with the file
read once, and memory-mapped (the first lean load). Each in a fresh process; prints the peak RSS
growth against the weights' size (Linux: ``/proc/self/clear_refs``).

    .venv/bin/python benchmarks/bench_load_memory.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

LAYERS = 6
"""Linear 4096x4096 layers of 64 MiB each."""


def rss(field: str) -> int:
    return int(re.search(field + r":\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def build() -> nn.Module:
    return nn.Sequential(*[nn.Linear(4096, 4096) for _ in range(LAYERS)])


def measure(mode: str, path: str) -> None:
    from autolabel_gui.detection import lean_load

    Path("/proc/self/clear_refs").write_text("5")
    before = rss("VmRSS")
    if mode == "plain":
        model = build()
        model.load_state_dict(torch.load(path, weights_only=True)["model"])
    else:
        with lean_load.parameters_on_meta():
            model = build()
        lean_load.assign(model, torch.load(path, weights_only=True, mmap=mode == "mapped")["model"])
    with torch.no_grad():
        sum(float(p.sum()) for p in model.parameters())  # touch every page
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    growth = rss("VmHWM") - before
    print(f"{mode:>6}: peak RSS +{growth / 2**20:.0f} MiB for {weights / 2**20:.0f} MiB of weights "
          f"({growth / weights:.2f} copies)")


def main() -> None:
    if len(sys.argv) == 3:
        measure(sys.argv[1], sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "w.pth")
        torch.save({"model": build().state_dict()}, path)
        for mode in ("plain", "read", "mapped"):
            subprocess.run([sys.executable, __file__, mode, path], check=True)


if __name__ == "__main__":
    main()
