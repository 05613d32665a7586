"""Fitting boxes to their objects without a window: the real segmenter code path on a tiny random
SAM, the embedding cache, the undo step, and the rules about which boxes a fit may change."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from autolabel_gui.app.fit_box import BoxFitter, FitRequest, FitResult, FitTarget, apply_fit, plan_fit
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.review import ReviewState
from autolabel_gui.detection.segmenter import Segmenter
from autolabel_gui.detection.segmenter_spec import missing

from tests.fixtures.hostile import CodePayload

# One torch thread: on 2 shared cores two threads spin-wait on each other, and the tiny models' small
# matrices made a fit 100 times slower (measured: 5 fits 3.5 s on 2 threads, 0.03 s on 1, load 5).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE = np.random.default_rng(3).integers(0, 255, (90, 120, 3), dtype=np.uint8)
PROMPT = (10.0, 20.0, 60.0, 70.0)


def own_mask_box(folder: Path, image: np.ndarray, box: tuple[float, ...]) -> tuple[int, int, int, int] | None:
    """What the model card's recipe gives, computed apart from the program: one full forward with
    the pixels, the processor's ``post_process_masks``, then the extreme True pixels."""
    import torch
    import transformers

    sam2 = json.loads((folder / "config.json").read_text())["model_type"] == "sam2"
    prefix = "Sam2" if sam2 else "Sam"
    model = getattr(transformers, f"{prefix}Model").from_pretrained(folder).eval()
    processor = getattr(transformers, f"{prefix}Processor").from_pretrained(folder)
    inputs = processor(images=image, input_boxes=[[list(box)]], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs, multimask_output=False)
    sizes = [inputs["original_sizes"]] if sam2 else [inputs["original_sizes"], inputs["reshaped_input_sizes"]]
    mask = processor.post_process_masks(out.pred_masks, *sizes)[0]
    pixels = np.argwhere(mask[0, 0].numpy())
    if len(pixels) == 0:
        return None
    return (int(pixels[:, 1].min()), int(pixels[:, 0].min()), int(pixels[:, 1].max()) + 1,
            int(pixels[:, 0].max()) + 1)


class Counting:
    """A real segmenter that counts its image-encoder runs."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.inner = segmenter
        self.model_id = segmenter.model_id
        self.embeds = 0

    def embed(self, image):
        self.embeds += 1
        return self.inner.embed(image)

    def fit(self, embedding, boxes):
        return self.inner.fit(embedding, boxes)


@pytest.fixture
def request_fixture(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


def request(key: object, *boxes: Box, rel: str = "a.png", selected_only: bool = False) -> FitRequest:
    return FitRequest(rel, Path(rel), key, tuple(FitTarget(i, b) for i, b in enumerate(boxes)), selected_only)


@pytest.mark.parametrize("family", ["tiny_sam", "tiny_sam2"])
def test_a_fit_is_the_box_of_the_models_own_mask_for_that_prompt(family: str, request_fixture) -> None:
    folder = request_fixture.getfixturevalue(family)
    segmenter = Segmenter.from_folder(folder)
    fitter = BoxFitter(lambda _value: segmenter, lambda _path: IMAGE)
    result = fitter.fit(request("k", Box(*PROMPT, "cup")))
    expected = own_mask_box(folder, IMAGE, PROMPT)
    assert result.error is None
    assert result.fitted == (expected,)
    assert expected is not None and expected != PROMPT and expected != (0, 0, 120, 90)  # a real change


def test_the_embedding_is_computed_once_per_image_and_model(tiny_sam: Path) -> None:
    counting = Counting(Segmenter.from_folder(tiny_sam))
    loads: list[str | None] = []
    images: list[Path] = []

    def load(value):
        loads.append(value)
        return counting

    def image(path):
        images.append(path)
        return IMAGE

    fitter = BoxFitter(load, image, cache_size=2)
    box = Box(*PROMPT, "cup")
    first = fitter.fit(request("a", box))
    again = fitter.fit(request("a", Box(30, 30, 80, 80, "cup"), box))
    assert counting.embeds == 1 and len(images) == 1 and loads == [None]
    assert again.fitted[1] == first.fitted[0]  # the same prompt on the cached embedding: the same box
    fitter.fit(request("b", box))
    fitter.fit(request("c", box))  # the cache keeps two: "a" goes
    assert counting.embeds == 3
    fitter.fit(request("a", box))
    assert counting.embeds == 4 and len(fitter.embeddings) == 2


def test_without_the_segmenters_weights_the_fit_says_how_to_get_them(tmp_path: Path) -> None:
    problem = missing("sam-vit-base")
    assert problem is not None and "autolabel-gui weights download --segmenter sam-vit-base" in problem
    assert "autolabel-gui weights download --segmenter" in (missing(str(tmp_path / "nope")) or "")
    fitter = BoxFitter(lambda value: Segmenter.load(value), lambda _path: IMAGE)
    result = fitter.fit(request("k", Box(*PROMPT, "cup")))
    assert result.fitted == () and result.error is not None
    assert "autolabel-gui weights download --segmenter" in result.error
    state = ReviewState(120, 90, [Box(*PROMPT, "cup")])
    state.select(0)
    text, error = apply_fit(state, result)
    assert error and "weights download" in text and state.items[0].box.xyxy == PROMPT


def test_a_folder_that_is_no_segmenter_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    problem = missing(str(tmp_path))
    assert problem is not None and "'bert' is not a segmenter" in problem


def test_a_segmenter_folder_asking_for_its_own_code_is_refused(tmp_path: Path, tiny_sam: Path) -> None:
    import shutil

    from autolabel_gui.detection.base import DetectorUnavailable

    folder = tmp_path / "sam"
    shutil.copytree(tiny_sam, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    (folder / "evil.py").write_text("raise SystemExit('ran the folder code')\n")
    with pytest.raises(DetectorUnavailable, match="custom code is refused"):
        Segmenter.load(str(folder))


def state_with(*boxes: Box) -> ReviewState:
    return ReviewState(200, 150, boxes)


def test_the_fitted_box_is_one_undo_step_and_undo_restores_it_exactly() -> None:
    box = Box(10.25, 20.5, 60.75, 70.0, "cup", difficult=True)
    state = state_with(box)
    state.select(0)
    planned = plan_fit(state, "a.png", Path("a.png"), "k", all_accepted=False)
    assert isinstance(planned, FitRequest)
    text, error = apply_fit(state, FitResult(planned, ((12, 22, 58, 66),)))
    assert not error and text == "fitted: 50x50 → 46x44"
    fitted = state.items[0].box
    assert fitted.xyxy == (12, 22, 58, 66) and fitted.label == "cup" and fitted.difficult
    assert state.undo()
    assert state.items[0].box == box
    assert state.redo() and state.items[0].box == fitted


def test_f_fits_only_the_selected_box_and_never_one_selected_since() -> None:
    a, b = Box(10, 10, 50, 50, "cup"), Box(100, 20, 150, 80, "cat")
    state = state_with(a, b)
    assert plan_fit(state, "a.png", Path("a.png"), "k", False) == "Select a box first (Tab, or a click on it), " \
                                                                  "then F fits it to its object."
    state.select(1)
    planned = plan_fit(state, "a.png", Path("a.png"), "k", False)
    assert isinstance(planned, FitRequest) and [t.index for t in planned.targets] == [1]
    state.select(0)  # the user moved on before the answer came
    text, error = apply_fit(state, FitResult(planned, ((101, 21, 149, 79),)))
    assert error and "unselected meanwhile" in text
    assert [i.box for i in state.items] == [a, b] and not state.can_undo


def test_a_box_moved_meanwhile_is_left_alone() -> None:
    state = state_with(Box(10, 10, 50, 50, "cup"))
    state.select(0)
    planned = plan_fit(state, "a.png", Path("a.png"), "k", False)
    assert isinstance(planned, FitRequest)
    state.move_selected(5, 0)
    moved = state.items[0].box
    text, error = apply_fit(state, FitResult(planned, ((11, 11, 40, 40),)))
    assert error and state.items[0].box == moved


def test_an_empty_mask_leaves_the_box_as_it_is_and_says_so() -> None:
    box = Box(10, 10, 50, 50, "cup")
    state = state_with(box)
    state.select(0)
    planned = plan_fit(state, "a.png", Path("a.png"), "k", False)
    assert isinstance(planned, FitRequest)
    text, error = apply_fit(state, FitResult(planned, (None,)))
    assert error and text == "fit: no object found in the box; it is left as it is"
    assert state.items[0].box == box and not state.can_undo


def test_shift_f_fits_the_accepted_boxes_shown_and_no_proposal() -> None:
    accepted = [Box(10, 10, 50, 50, "cup"), Box(60, 60, 100, 100, "cat")]
    state = state_with(*accepted)
    state.set_proposals([Box(120, 10, 190, 90, "person", 0.9, BoxState.PROPOSED)])
    pending = state.items[2].box
    state.select(2)  # even a selected proposal is not an accepted box
    planned = plan_fit(state, "a.png", Path("a.png"), "k", True)
    assert isinstance(planned, FitRequest) and [t.index for t in planned.targets] == [0, 1]
    text, error = apply_fit(state, FitResult(planned, ((12, 12, 48, 48), None)))
    assert not error and text == "fitted 1 of 2 boxes (1 without an object found, left as it is)"
    assert [i.box.xyxy for i in state.items] == [(12, 12, 48, 48), accepted[1].xyxy, pending.xyxy]
    assert state.items[2].pending
    state.undo()
    assert [i.box for i in state.items[:2]] == accepted


def test_shift_f_without_accepted_boxes_and_a_read_only_image_say_why() -> None:
    state = state_with()
    assert "accepted boxes only" in str(plan_fit(state, "a.png", Path("a.png"), "k", True))
    state = ReviewState(200, 150, [Box(10, 10, 50, 50, "cup")], read_only=True)
    state.select(0)
    assert "read-only" in str(plan_fit(state, "a.png", Path("a.png"), "k", False))


def test_the_segmenter_option_is_remembered_for_the_folder(tmp_path: Path, tiny_sam: Path) -> None:
    chosen = ProjectSettings().with_args(argparse.Namespace(segmenter="edgetam"))
    chosen.save(tmp_path)
    assert ProjectSettings.load(tmp_path).segmenter == "edgetam"
    folder = ProjectSettings().with_args(argparse.Namespace(segmenter=str(tiny_sam)))
    assert folder.segmenter == str(tiny_sam)  # chosen on this machine: a folder may name it later
    folder.save(tmp_path)
    assert ProjectSettings.load(tmp_path).segmenter == str(tiny_sam)


def test_a_folders_own_segmenter_folder_is_not_used_unless_chosen(tmp_path: Path) -> None:
    elsewhere = tmp_path / "someone-elses-model"
    elsewhere.mkdir()
    images = tmp_path / "images"
    (images / ".autolabel").mkdir(parents=True)
    (images / ".autolabel" / "project.json").write_text(json.dumps({"segmenter": str(elsewhere)}))
    loaded = ProjectSettings.load(images)
    assert loaded.segmenter is None and any("setting 'segmenter' ignored" in n for n in loaded.notes)


def test_models_lists_the_segmenters_and_weights_download_takes_one(capsys) -> None:
    from autolabel_gui.cli import parse_args
    from autolabel_gui.commands import models

    models.run(argparse.Namespace())
    out = capsys.readouterr().out
    assert "sam2.1-hiera-tiny" in out and "Apache-2.0" in out and "--segmenter NAME" in out
    args = parse_args(["weights", "download", "--segmenter", "sam-vit-base"])
    assert args.segmenter == "sam-vit-base"
    assert parse_args(["some-folder", "--segmenter", "edgetam"]).segmenter == "edgetam"
    with pytest.raises(SystemExit):
        parse_args(["weights", "download", "--segmenter", "no-such-model"])


RACE = """
import sys, threading
sys.path.insert(0, {root!r})
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.segmenter import Segmenter

assert "transformers" not in sys.modules
errors = []
def run(build):
    try:
        build()
    except Exception as exc:
        errors.append(repr(exc))
config = DetectorConfig(backend="transformers", weights={detector!r}, device="cpu", precision="fp32")
threads = [threading.Thread(target=run, args=(lambda: Segmenter.load({segmenter!r}),)),
           threading.Thread(target=run, args=(lambda: create_detector(config),))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("errors:", errors)
"""


def test_the_segmenter_and_a_detector_built_at_once_both_load(tiny_sam: Path, tiny_hf) -> None:
    """The fit thread and the detector's thread each build a model while transformers is first
    imported (seen under Xvfb: "cannot import name 'AutoTokenizer'" in the detector's thread)."""
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[1])
    script = RACE.format(root=root, detector=str(tiny_hf.folder), segmenter=str(tiny_sam))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "errors: []" in done.stdout, done.stdout


def test_weights_download_of_a_segmenter_offline_says_what_to_do(capsys) -> None:
    from autolabel_gui.cli import parse_args
    from autolabel_gui.commands import weights

    assert weights.run(parse_args(["weights", "download", "--segmenter", "sam2.1-hiera-tiny"])) == 1
    err = capsys.readouterr().err
    assert "could not download facebook/sam2.1-hiera-tiny" in err
    assert "huggingface-cli download facebook/sam2.1-hiera-tiny) and pass --segmenter DIR" in err


_FIT_MEMORY = """
import json, re, sys
import numpy as np, torch
torch.set_num_threads(1)
from pathlib import Path
from autolabel_gui.detection.segmenter import Segmenter

def rss(field):
    return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

seg = Segmenter.from_folder(Path(sys.argv[1]))
image = np.random.default_rng(0).integers(0, 255, (2000, 3000, 3), dtype=np.uint8)
embedding = seg.embed(image)
boxes = [(float(10 + 80 * i), 100.0, float(60 + 80 * i), 400.0) for i in range(int(sys.argv[2]))]
seg.fit(embedding, boxes[:1])
Path("/proc/self/clear_refs").write_text("5")
before = rss("VmRSS")
seg.fit(embedding, boxes)
print(json.dumps({"growth": rss("VmHWM") - before}))
"""


@pytest.mark.model
@pytest.mark.skipif(not __import__("os").access("/proc/self/clear_refs", __import__("os").W_OK),
                    reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")
def test_shift_f_on_a_large_image_does_not_hold_a_full_size_float_mask_per_box(tiny_sam: Path) -> None:
    """``post_process_masks`` upsampled every box's mask to the full image, in float32, all at
    once: 32 accepted boxes on a 6 Mpx photo took 947 MiB, on a 100 Mpx aerial image 13 GB: the
    window killed for memory, its unsaved edits with it. The fit needs one box per mask: its
    memory does not grow with boxes x pixels: at most 20 bytes a pixel, for any count (fewer
    than five full-size float masks; one box alone takes about 6: a float and a bool mask, and
    glibc keeps up to 48 MB of freed heap resident, so 32 boxes measured 6.5 to 13 B/px)."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", _FIT_MEMORY, str(tiny_sam), "32"], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-800:]
    growth = json.loads(done.stdout.strip().splitlines()[-1])["growth"]
    pixels = 2000 * 3000
    assert growth <= 20 * pixels, f"fitting 32 boxes grew RSS by {growth / 2**20:.0f} MiB ({growth / pixels:.0f} B/px)"


@pytest.mark.model
@pytest.mark.usefixtures("one_torch_thread")
def test_fits_of_degenerate_and_border_boxes_stay_inside_the_image(tiny_sam: Path) -> None:
    """A 1-px box, boxes on each border and corner, one over the whole image: every answer is a
    box inside the image or None, never an error."""
    import numpy as np
    from autolabel_gui.detection.segmenter import Segmenter

    image = np.random.default_rng(5).integers(0, 255, (61, 97, 3), dtype=np.uint8)
    segmenter = Segmenter.from_folder(tiny_sam)
    embedding = segmenter.embed(image)
    boxes = [(10.0, 10.0, 11.0, 11.0), (0.0, 0.0, 1.0, 1.0), (96.0, 60.0, 97.0, 61.0), (0.0, 0.0, 97.0, 61.0),
             (0.0, 20.0, 5.0, 40.0), (90.0, 0.0, 97.0, 61.0), (0.5, 0.5, 96.5, 1.5)]
    fitted = segmenter.fit(embedding, boxes)
    assert len(fitted) == len(boxes)
    for box in fitted:
        assert box is None or (0 <= box[0] < box[2] <= 97 and 0 <= box[1] < box[3] <= 61), box


@pytest.mark.model
def test_a_segmenter_folder_whose_weights_are_a_pickle_with_code_is_refused(tiny_sam: Path, tmp_path: Path) -> None:
    """A chosen SAM folder with ``pytorch_model.bin`` (no safetensors) that runs code when
    unpickled: loading must refuse it (weights only), say so, and run nothing."""
    import shutil

    import torch
    from autolabel_gui.detection.base import DetectorUnavailable
    from autolabel_gui.detection.segmenter import Segmenter
    from safetensors.torch import load_file

    folder = tmp_path / "sam"
    shutil.copytree(tiny_sam, folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran"
    torch.save({**state, "payload": CodePayload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(DetectorUnavailable):
        Segmenter.from_folder(folder)
    assert not marker.exists()
