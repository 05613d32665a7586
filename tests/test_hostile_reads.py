"""Reads that must never hang or stop the window (issue 21): a FIFO among a folder's files, a
user key file nested too deep. Each hang is run in a child process with a timeout, so a
regression fails the test instead of hanging the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.window import write_image

REPO = Path(__file__).resolve().parents[1]

FIFO_SCRIPT = """
import sys
from pathlib import Path
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.app.status import annotation_status, verified_before
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, image_size

folder = ImageFolder(Path(sys.argv[1]))
print("status", annotation_status(folder.voc_path("a.png"), False).value)
print("verified_before", verified_before(folder, {"a.png": []}, ["dog"]))
opened = ReviewSession(folder, None, ["dog"], None, 0.35, user="alice").open("a.png")
print("opened", opened.state.read_only, opened.problem)
try:
    image_size(folder.root / "pipe.png")
except ImageLoadError as exc:
    print("image_size", exc)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_fifo_named_like_a_voc_file_never_hangs_the_window_reads(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    os.mkfifo(tmp_path / "a.xml")
    os.mkfifo(tmp_path / "pipe.png")
    done = subprocess.run([sys.executable, "-c", FIFO_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "status in review"
    assert lines[1] == "verified_before {}"
    assert lines[2].startswith("opened True ") and "FIFO" in lines[2]
    assert lines[3] == f"image_size {tmp_path / 'pipe.png'}: cannot read the image header (not read: it is a FIFO " \
                       "(named pipe), not a regular file)"


@pytest.mark.parametrize(("text", "depth"), [
    ('{"a": ["b", "c"]}', 2),
    ('{"a": ["[[[[", "{{{{"]}', 2),
    ('{"a\\\\": "x\\"[[[", "b": [[1]]}', 3),
    ("[" * 100_000, 100_000),
    ("", 0),
])
def test_nesting_is_counted_without_recursion_and_brackets_in_strings_do_not_count(text: str, depth: int) -> None:
    from autolabel_gui.core.shallow_json import loads_shallow, nesting_depth

    assert nesting_depth(text) == depth
    if depth > 8:
        with pytest.raises(ValueError, match="nested deeper than 8 levels"):
            loads_shallow(text, 8)
