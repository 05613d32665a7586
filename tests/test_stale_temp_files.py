"""Hidden temporary files left by a process killed inside ``atomic_write_bytes`` are removed when
a folder is opened or labelled, once they are old; nothing else is ever removed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from autolabel_gui.core.atomic import sweep_stale_temp_files

REPO = Path(__file__).resolve().parents[1]
OLD = 601.0

_KILLED_BEFORE_RENAME = """
import os, sys
from autolabel_gui.core.atomic import atomic_write_bytes
os.replace = lambda *args: os._exit(9)  # the process dies between writing the temporary file and the rename
atomic_write_bytes(sys.argv[1], b"the new version")
"""


def killed_write(target: Path) -> Path:
    """Run the real ``atomic_write_bytes`` in a process that dies before its rename; returns
    the temporary file it left."""
    before = set(target.parent.iterdir())
    proc = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_RENAME, str(target)], cwd=REPO, timeout=60)
    assert proc.returncode == 9
    (left,) = set(target.parent.iterdir()) - before
    return left


def leftover(target: Path, age_s: float) -> Path:
    """A temporary file named as ``atomic_write_bytes`` names it, last written ``age_s`` ago."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.write(fd, b"half of a file")
    os.close(fd)
    return aged(Path(name), age_s)


def aged(path: Path, age_s: float) -> Path:
    then = time.time() - age_s
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def user_files(folder: Path) -> dict[Path, bytes]:
    """Old files of the user's that look a little like ours, but are not named as ours are."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in (".x.tmp", ".a.xml.tmp", "a.xml.abcd1234.tmp", ".a.xml.ABCD1234.tmp", ".a.xml.abcd1234.tmp.bak",
                 ".a.xml.abc.tmp", "notes.tmp"):
        (folder / name).write_bytes(name.encode())
        files[aged(folder / name, 3600)] = name.encode()
    return files


def test_sweep_removes_only_old_leftovers_of_atomic_write(tmp_path):
    target = tmp_path / "a.xml"
    target.write_bytes(b"saved work")
    old = aged(killed_write(target), OLD)
    fresh = killed_write(target)
    assert old.name.startswith(".a.xml.") and old.name.endswith(".tmp")
    mine = user_files(tmp_path)
    (tmp_path / ".b.xml.abcd1234.tmp").mkdir()  # a folder named like ours
    aged(tmp_path / ".b.xml.abcd1234.tmp", OLD)
    outside = tmp_path / "elsewhere.txt"
    outside.write_bytes(b"not ours")
    os.symlink(outside, tmp_path / ".c.xml.abcd1234.tmp")  # a link named like ours
    aged(tmp_path / ".c.xml.abcd1234.tmp", OLD)

    assert sweep_stale_temp_files(tmp_path) == [old]
    assert not old.exists() and fresh.exists()
    assert target.read_bytes() == b"saved work"
    assert {p: p.read_bytes() for p in mine} == mine
    assert (tmp_path / ".b.xml.abcd1234.tmp").is_dir() and (tmp_path / ".c.xml.abcd1234.tmp").is_symlink()
    assert outside.read_bytes() == b"not ours"
    assert sweep_stale_temp_files(tmp_path / "absent") == []


def test_opening_a_folder_in_the_window_sweeps_its_annotation_folders(open_review, tmp_path):
    root, labels = tmp_path / "images", tmp_path / "labels"
    from tests.fixtures.window import write_image

    write_image(root / "sub" / "c.png")
    stale = [leftover(labels / "a.xml", OLD), leftover(labels / "sub" / "c.xml", OLD),
             leftover(root / ".autolabel" / "project.json", OLD)]
    kept = [leftover(labels / "b.xml", 5), leftover(root / ".autolabel" / "project.json", 5),
            leftover(root / "sub" / "c.xml", OLD)]  # the image folder is not where labels go here
    mine = user_files(labels)
    h = open_review(["a.png", "b.png"], root=root, annotations_dir=str(labels))
    assert h.controller.review.folder.images == ["a.png", "b.png", "sub/c.png"]
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert {p: p.read_bytes() for p in mine} == mine


@pytest.mark.model
def test_labelling_a_folder_sweeps_its_voc_and_state_folders(tmp_path, tiny_gdino):
    from autolabel_gui.cli import main

    from tests.fixtures.hostile import label_args, small_model_settings
    from tests.fixtures.pipeline import write_images

    folder, voc = tmp_path / "photos", tmp_path / "voc"
    write_images(folder, ["p0.png"], size=(64, 48))
    small_model_settings(folder)
    stale = [leftover(voc / "p0.xml", OLD), leftover(folder / ".autolabel" / "project.json", OLD)]
    fresh = leftover(voc / "p1.xml", 5)
    mine = user_files(voc)
    assert main(["label", str(folder), "--voc-dir", str(voc), *label_args(tiny_gdino, batch=1)]) == 0
    assert [p for p in stale if p.exists()] == [] and fresh.exists()
    assert {p: p.read_bytes() for p in mine} == mine
    assert (voc / "p0.xml").is_file()


def test_a_staged_build_killed_half_way_is_swept_by_the_next_build_of_that_target(tmp_path):
    """``weights convert`` killed by SIGKILL leaves its hidden stage; the next build removes it,
    but never the stage of a build still running, nor a folder of another name."""
    from autolabel_gui.core.atomic import staged_folder

    script = ("import os, sys\nfrom autolabel_gui.core.atomic import staged_folder\n"
              "with staged_folder(sys.argv[1]) as stage:\n"
              "    (stage / 'model.safetensors').write_bytes(b'half')\n"
              "    os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model")], check=False)
    assert killed.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".model.") and left[0].endswith(".partial")
    running = tmp_path / f".model.{os.getpid()}.zzzz.partial"
    running.mkdir()
    other = tmp_path / ".other.1.abcd.partial"
    other.mkdir()
    with staged_folder(tmp_path / "model") as stage:
        (stage / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.1.abcd.partial", running.name, "model"])
    assert (tmp_path / "model/config.json").read_text() == "{}"
