"""Grid triage without a window: which images a page holds, marks, what Space does to each;
and the thumbnails the grid draws (decoded small, oriented, refused like full images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from autolabel_gui.app.folder_review import FolderReview
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.app.triage import Triage
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, load_image, load_thumbnail
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.run_plan import PromptGroup, RunPlan
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.images import GREEN, GREY, RED, ImageSpec, corner_colors, write_image
from tests.fixtures.review import review_of

IMAGES = [f"{c}.png" for c in "abcdefghijk"]
RUN = "run-1"


def test_a_page_holds_the_next_eligible_images_from_the_one_on_screen_wrapping():
    triage = Triage(IMAGES, columns=2)
    waiting = {"c.png", "h.png"}
    eligible = lambda rel: rel not in waiting  # noqa: E731
    assert triage.select("b.png", eligible) == ["b.png", "d.png", "e.png", "f.png"]
    assert triage.select("f.png", eligible, after=True) == ["g.png", "i.png", "j.png", "k.png"]
    assert triage.select("j.png", eligible) == ["j.png", "k.png", "a.png", "b.png"]  # wraps
    assert triage.select("a.png", lambda rel: rel == "k.png") == ["k.png"]
    assert triage.select("a.png", lambda rel: False) == []


def test_marked_images_are_set_aside_and_never_on_a_later_page(tmp_path):
    session, _ = _session(tmp_path, IMAGES[:6])
    triage = Triage(IMAGES[:6], columns=2)
    triage.open(triage.select("a.png", lambda rel: True))
    for rel in triage.page:
        triage.picture_shown(rel)
    assert triage.toggle(1) and triage.toggle(3) and triage.toggle(3)  # the second press takes it back
    assert triage.marked() == ["b.png"]
    result = triage.verify_page(_review(session).accept_and_verify)
    assert result.verified == ["a.png", "c.png", "d.png"] and result.set_aside == ["b.png"]
    unverified = lambda rel: not session.open(rel).state.verified  # noqa: E731
    assert triage.select("d.png", unverified, after=True) == ["e.png", "f.png"]  # b.png waits for the single view
    assert triage.back_to(lambda rel: True) == "b.png"
    assert triage.back_to(lambda rel: rel != "b.png") is None


def test_space_verifies_the_unmarked_exactly_as_on_one_image(tmp_path):
    session, folder = _session(tmp_path, IMAGES[:4])
    triage = Triage(IMAGES[:4], columns=2)
    triage.open(IMAGES[:4])
    for rel in IMAGES[:4]:
        triage.picture_shown(rel)
    triage.toggle(2)
    result = triage.verify_page(_review(session).accept_and_verify)
    assert result.accepted == 6  # two visible proposals each; the 0.1 one stays out
    for rel in ("a.png", "b.png", "d.png"):
        labels = read_voc(folder.voc_path(rel))
        assert labels.verified
        assert [(b.label, b.xyxy) for b in labels.boxes] == [("dog", (10.0, 10.0, 40.0, 30.0)),
                                                           ("cat", (50.0, 20.0, 90.0, 60.0))]
    assert not folder.voc_path("c.png").exists()
    assert session.open("c.png").state.pending_count() == 2


def test_the_verify_gate_holds_in_the_grid_too(tmp_path):
    """An image the model has not seen is never verified, whatever the page says."""
    session, folder = _session(tmp_path, ["a.png"], proposals=False)
    assert _review(session).accept_and_verify("a.png") == (0, "waiting for the model")
    assert not folder.voc_path("a.png").exists()


def test_space_waits_until_every_picture_is_drawn_and_a_broken_one_is_marked():
    triage = Triage(IMAGES, columns=2)
    triage.open(IMAGES[:4])
    assert triage.blocker() == "4 images are still loading; look at them first"
    for rel in IMAGES[:3]:
        triage.picture_shown(rel)
    assert triage.blocker() == "1 image is still loading; look at them first"
    assert triage.picture_failed("d.png", "corrupt") == 3
    assert triage.blocker() is None
    assert triage.marked() == ["d.png"]
    assert not triage.toggle(3)  # it cannot be unmarked: nobody has seen it
    assert not triage.toggle(7)


def _review(session: ReviewSession) -> FolderReview:
    """The folder's review around ``session``, its model running (Space waits for it)."""
    return review_of(session.folder, ProjectSettings(classes=["dog", "cat"]), session=session)


def _session(tmp_path: Path, images: list[str], proposals: bool = True) -> tuple[ReviewSession, ImageFolder]:
    for i, rel in enumerate(images):
        write_image(tmp_path / rel, ImageSpec(size=(120, 80), color=(i * 20, 90, 90)))
    folder = ImageFolder(tmp_path)
    cache = ProposalCache.for_folder(tmp_path)
    if proposals:
        for rel in images:
            cache.put(ImageKey.from_path(tmp_path, rel), RUN, [
                Box(10, 10, 40, 30, "dog", 0.9, BoxState.PROPOSED), Box(50, 20, 90, 60, "cat", 0.5, BoxState.PROPOSED),
                Box(0, 0, 5, 5, "cat", 0.1, BoxState.PROPOSED)])
    plan = RunPlan((PromptGroup(Ontology.from_names(["dog", "cat"]), RUN),), ("dog", "cat"))
    return ReviewSession(folder, cache, ["dog", "cat"], plan, 0.35), folder


# ---------------------------------------------------------------------------- thumbnails

@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_thumbnail_is_small_oriented_and_looks_like_the_image(tmp_path, suffix):
    spec = ImageSpec(size=(1600, 960), marker=RED, marker2=GREEN, marker_size=320, exif_orientation=6)
    path = write_image(tmp_path / f"big{suffix}", spec)
    thumb = load_thumbnail(path, 200)
    assert thumb.shape == (200, 120, 3) and thumb.dtype == np.uint8 and thumb.flags.c_contiguous
    corners = corner_colors(thumb, size=10)
    assert _close(corners["TR"], RED) and _close(corners["BR"], GREEN) and _close(corners["TL"], GREY)
    full = load_image(path)
    assert np.abs(full[::8, ::8].astype(int).mean(axis=(0, 1)) - thumb.astype(int).mean(axis=(0, 1))).max() < 4


def test_a_small_image_is_not_enlarged(tmp_path):
    path = write_image(tmp_path / "small.png", ImageSpec(size=(64, 48)))
    assert load_thumbnail(path, 512).shape == (48, 64, 3)


def test_a_truncated_jpeg_is_refused_as_for_the_full_view(tmp_path):
    path = write_image(tmp_path / "t.jpg", ImageSpec(size=(800, 600), marker=RED))
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(ImageLoadError) as info:
        load_thumbnail(path, 128)
    assert info.value.path == path


def _close(color: tuple[int, int, int], expected: tuple[int, int, int], tol: int = 16) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(color, expected))
