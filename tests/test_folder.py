"""ImageFolder: what gets listed, in which order, what is skipped and reported, where VOC files go."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from autolabel_gui.core import folder as folder_module
from autolabel_gui.core.folder import IMAGE_EXTENSIONS, ImageFolder, natural_key


def touch(root: Path, *names: str) -> None:
    """Empty files are enough: listing never opens them."""
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def test_natural_order_numbers_case_and_ties(tmp_path: Path) -> None:
    names = ["img10.jpg", "img2.jpg", "IMG1.jpg", "img2b.jpg", "img02.jpg", "img1.jpg", "b.jpg", "A.jpg"]
    touch(tmp_path, *names)
    assert ImageFolder(tmp_path).images == [
        "A.jpg", "b.jpg", "IMG1.jpg", "img1.jpg", "img02.jpg", "img2.jpg", "img2b.jpg", "img10.jpg",
    ]


def test_natural_order_by_path_component(tmp_path: Path) -> None:
    touch(tmp_path, "a/10.jpg", "a/2.jpg", "a b.jpg", "a.jpg", "scene2/x.jpg", "scene10/x.jpg", "frame_0009.jpg")
    assert ImageFolder(tmp_path).images == [
        "a/2.jpg", "a/10.jpg", "a b.jpg", "a.jpg", "frame_0009.jpg", "scene2/x.jpg", "scene10/x.jpg",
    ]


def test_natural_key_does_not_mix_text_and_numbers() -> None:
    keys = [natural_key(s) for s in ["1", "a", "a1", "1a", "", "a01b2"]]
    assert sorted(keys)  # comparing every pair must not raise TypeError
    assert natural_key("x9") < natural_key("x10")


def test_shuffled_large_listing_comes_back_in_frame_order(tmp_path: Path) -> None:
    frames = [f"cam{c}/frame{i}.jpg" for c in (1, 2, 10) for i in range(300)]
    shuffled = frames[:]
    random.Random(1).shuffle(shuffled)
    touch(tmp_path, *shuffled)
    assert ImageFolder(tmp_path).images == frames


def test_extensions_hidden_and_state_folders(tmp_path: Path) -> None:
    touch(tmp_path, "a.JPG", "b.jpeg", "c.PNG", "d.bmp", "e.tif", "f.tiff", "g.webp",
          "notes.txt", "a.xml", "movie.mp4", ".hidden.jpg", ".git/x.jpg", ".autolabel/cache.png",
          "sub/.thumbs/t.jpg", "sub/ok.jpg")
    f = ImageFolder(tmp_path)
    assert f.images == ["a.JPG", "b.jpeg", "c.PNG", "d.bmp", "e.tif", "f.tiff", "g.webp", "sub/ok.jpg"]
    assert f.problems == []
    assert len(f) == 8
    assert {".jpg", ".png"} <= IMAGE_EXTENSIONS


def test_unicode_and_space_names(tmp_path: Path) -> None:
    names = ["고양이 사진.jpg", "猫/咖啡杯.png", "🚀 launch.jpg", "with  two spaces.jpeg"]
    touch(tmp_path, *names)
    f = ImageFolder(tmp_path)
    assert sorted(f.images) == sorted(names)
    assert f.voc_path("猫/咖啡杯.png") == tmp_path / "猫" / "咖啡杯.xml"
    assert f.image_path("🚀 launch.jpg").is_file()


def test_symlink_loop_is_skipped_and_reported(tmp_path: Path) -> None:
    touch(tmp_path, "a/b/img.jpg", "top.jpg")
    os.symlink("../..", tmp_path / "a" / "b" / "loop")
    os.symlink(tmp_path, tmp_path / "a" / "self")
    f = ImageFolder(tmp_path)
    assert f.images == ["a/b/img.jpg", "top.jpg"]
    assert len(f.problems) == 2
    assert any(p.startswith("a/b/loop: ") and "symlink loop" in p for p in f.problems)
    assert any(p.startswith("a/self: ") for p in f.problems)


def test_linked_folder_is_listed_once_under_its_real_name(tmp_path: Path) -> None:
    touch(tmp_path, "real/x.jpg")
    os.symlink("real", tmp_path / "0_alias")  # sorts first, but the real path must win
    f = ImageFolder(tmp_path)
    assert f.images == ["real/x.jpg"]
    assert [p.split(":")[0] for p in f.problems] == ["0_alias"]


def test_linked_folder_outside_the_root_is_reported_not_listed(tmp_path: Path) -> None:
    """A save would write through it (issue 21): test_hostile_links has the attack."""
    root, other = tmp_path / "root", tmp_path / "elsewhere"
    touch(other, "o.jpg")
    touch(root, "r.jpg")
    os.symlink(other, root / "linked")
    folder = ImageFolder(root)
    assert folder.images == ["r.jpg"]
    assert folder.problems == ["linked: folder skipped, it is a link that leads outside the folder "
                               f"(to {other.resolve()}); nothing in it is listed or written"]


def test_broken_image_link_is_reported(tmp_path: Path) -> None:
    touch(tmp_path, "ok.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "broken.jpg")
    f = ImageFolder(tmp_path)
    assert f.images == ["ok.jpg"]
    assert f.problems == ["broken.jpg: skipped, broken link"]


def test_unreadable_subfolder_is_skipped_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path, "ok/a.jpg", "locked/b.jpg", "c.jpg")
    locked = tmp_path / "locked"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # running as root: permissions do not stop us, so make scandir fail
            real_scandir = os.scandir

            def scandir(path):
                if Path(path) == locked:
                    raise PermissionError(13, "Permission denied", str(path))
                return real_scandir(path)

            monkeypatch.setattr(folder_module.os, "scandir", scandir)
        f = ImageFolder(tmp_path)
    finally:
        locked.chmod(0o755)
    assert f.images == ["c.jpg", "ok/a.jpg"]
    assert f.problems == ["locked: folder skipped, cannot be read (Permission denied)"]


def test_missing_root_raises_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="nowhere: does not exist"):
        ImageFolder(tmp_path / "nowhere")
    touch(tmp_path, "file.jpg")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        ImageFolder(tmp_path / "file.jpg")


def test_voc_path_next_to_images(tmp_path: Path) -> None:
    touch(tmp_path, "x.jpg", "sub/deeper/y.v2.PNG", "noext/readme")
    f = ImageFolder(tmp_path)
    assert f.voc_path("x.jpg") == tmp_path / "x.xml"
    assert f.voc_path("sub/deeper/y.v2.PNG") == tmp_path / "sub" / "deeper" / "y.v2.xml"
    assert f.image_path("sub/deeper/y.v2.PNG") == tmp_path / "sub" / "deeper" / "y.v2.PNG"
    assert f.state_dir == tmp_path / ".autolabel"


def test_voc_path_in_annotations_folder_mirrors_subfolders(tmp_path: Path) -> None:
    root, ann = tmp_path / "images", tmp_path / "Annotations"
    touch(root, "x.jpg", "sub/deeper/y.png")
    f = ImageFolder(root, annotations=ann)
    assert f.voc_path("x.jpg") == ann / "x.xml"
    assert f.voc_path("sub/deeper/y.png") == ann / "sub" / "deeper" / "y.xml"
    assert f.state_dir == root / ".autolabel"


def test_images_sharing_a_stem_never_share_a_voc_file(tmp_path: Path) -> None:
    touch(tmp_path, "x.jpg", "x.png", "X.jpeg", "y.jpg")
    f = ImageFolder(tmp_path)
    paths = [f.voc_path(rel) for rel in f.images]
    assert len(set(paths)) == len(paths) == 4
    assert f.voc_path("X.jpeg") == tmp_path / "X.xml"  # first in natural order keeps labelImg's name
    assert f.voc_path("x.jpg") == tmp_path / "x.jpg.xml"
    assert f.voc_path("x.png") == tmp_path / "x.png.xml"
    assert f.voc_path("y.jpg") == tmp_path / "y.xml"
    assert sorted(p.split(":")[0] for p in f.problems) == ["x.jpg", "x.png"]


def test_rescan_sees_new_and_removed_files(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "b.jpg")
    f = ImageFolder(tmp_path)
    (tmp_path / "a.jpg").unlink()
    touch(tmp_path, "c/d.jpg")
    f.rescan()
    assert f.images == ["b.jpg", "c/d.jpg"]


def test_real_images_from_the_shared_fixture(image_folder) -> None:
    root = image_folder(["one.jpg", "nested/two.png"])
    assert ImageFolder(root).images == ["nested/two.png", "one.jpg"]
