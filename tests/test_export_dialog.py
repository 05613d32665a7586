"""The export dialog runs the export off the UI thread, shows progress, refuses and cancels cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.registry import EXPORT_FORMATS, ExportFormat
from autolabel_gui.gui.export_dialog import ExportDialog, default_output, export_summary
from PySide6.QtCore import Qt

from tests.fixtures.datasets import LAYOUT, LabelledFolder, make_labelled_folder


def _dialog(qtbot, folder: LabelledFolder) -> ExportDialog:
    """The dialog once it has counted what an export would write."""
    dialog = ExportDialog(ImageFolder(folder.root), ProjectSettings.load(folder.root))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.counted() is not None, timeout=30_000)
    return dialog


def test_exports_coco_with_progress_and_summary(qtbot, labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    dialog = _dialog(qtbot, labelled_folder)
    assert dialog.out_edit.text() == str(tmp_path / "data-yolo")
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("coco"))
    assert dialog.out_edit.text() == str(tmp_path / "data-coco")
    with qtbot.waitSignal(dialog.export_done, timeout=30_000) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert result.images == 5 and (tmp_path / "data-coco" / "annotations.json").is_file()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum() == 5
    assert "Exported 5 images" in dialog.status.text()
    assert "rot.jpg" in dialog.details.toPlainText()  # the EXIF note
    assert not dialog.running() and dialog.result_ is result


def test_non_empty_folder_is_refused_in_the_dialog(qtbot, labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    dialog = _dialog(qtbot, labelled_folder)
    dialog.out_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert not dialog.running() and "not empty" in dialog.status.text()
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_cancel_stops_and_leaves_nothing(qtbot, labelled_folder: LabelledFolder, tmp_path: Path,
                                        monkeypatch) -> None:
    """The real export runs, held after its first image until Cancel has been pressed."""
    import autolabel_gui.gui.export_dialog as module

    pressed = threading.Event()
    real = module.export_dataset

    def held(*args, progress, should_stop, **options):
        def progress_then_wait(phase: str, done: int, total: int) -> None:
            progress(phase, done, total)
            if (phase, done) == ("writing", 1):
                pressed.wait(10)
        return real(*args, progress=progress_then_wait, should_stop=should_stop, **options)

    monkeypatch.setattr(module, "export_dataset", held)
    dialog = _dialog(qtbot, labelled_folder)
    dialog.start()
    assert dialog.running() and not dialog.export_button.isEnabled()
    dialog.cancel()
    pressed.set()
    qtbot.waitUntil(lambda: not dialog.running(), timeout=30_000)
    assert dialog.status.text() == "Cancelled; nothing was written."
    assert dialog.result_ is None and dialog.export_button.isEnabled()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_default_output_never_names_an_existing_path(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data-voc").mkdir()
    assert default_output(tmp_path / "data", "voc") == tmp_path / "data-voc-2"


NAMES_WRITER = """
def write(stage, plan, ticker):
    stage.joinpath("names.txt").write_text("".join(f"{item.name} {len(item.labels.boxes)}\\n" for item in plan.items))
    ticker.tick(len(plan.items))
    return 0
"""


def test_a_new_format_is_one_module_and_one_registry_entry(qtbot, labelled_folder: LabelledFolder, tmp_path: Path,
                                                           monkeypatch) -> None:
    (tmp_path / "names_format.py").write_text(NAMES_WRITER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EXPORT_FORMATS, "names", ExportFormat("names", "Image names", "names_format:write"))
    assert main(["export", str(labelled_folder.root), "--format", "names", "--out", str(tmp_path / "cli")]) == 0
    lines = (tmp_path / "cli" / "names.txt").read_text().splitlines()
    assert sorted(lines) == ["cat1.jpg 2", "empty.png 0", "rot.jpg 1", "sub__a__img.jpg 1", "sub__b__img.jpg 1"]
    dialog = _dialog(qtbot, labelled_folder)
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("names"))
    assert dialog.format_box.currentText() == "Image names"
    with qtbot.waitSignal(dialog.export_done, timeout=30_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert sorted((tmp_path / "data-names" / "names.txt").read_text().splitlines()) == sorted(lines)


def test_dialog_says_how_many_images_and_negatives_it_will_export(qtbot, labelled_folder: LabelledFolder) -> None:
    dialog = _dialog(qtbot, labelled_folder)
    assert dialog.counted() == (5, 1)  # five verified images, empty.png is the negative
    assert "5 verified images" in dialog.status.text() and "1 of them negatives" in dialog.status.text()
    assert dialog.export_button.isEnabled()
    dialog.include_unverified.setChecked(True)
    qtbot.waitUntil(lambda: dialog.counted() is not None, timeout=30_000)
    assert dialog.counted() == (6, 1) and "6 images" in dialog.status.text()


def test_with_no_verified_image_export_is_refused_and_nothing_is_written(qtbot, tmp_path: Path) -> None:
    unverified = tuple(im for im in LAYOUT if not im.verified)
    folder = make_labelled_folder(tmp_path / "data", unverified)
    dialog = _dialog(qtbot, folder)
    assert dialog.counted() == (0, 0)
    assert not dialog.export_button.isEnabled()
    assert "Nothing to export" in dialog.status.text() and "verified" in dialog.status.text()
    assert "Nothing to export" in dialog.export_button.toolTip()
    dialog.start()  # e.g. a stray Enter: still nothing
    assert not dialog.running()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    dialog.include_unverified.setChecked(True)  # the unverified one has a file: now there is one
    qtbot.waitUntil(lambda: dialog.counted() is not None, timeout=30_000)
    assert dialog.counted() == (1, 0) and dialog.export_button.isEnabled()


def test_export_summary_words() -> None:
    assert export_summary(0, 0, True)[0] is False
    assert "include the images not yet verified" in export_summary(0, 0, True)[1]
    assert export_summary(0, 0, False) == (False, "Nothing to export: no image has an annotation file yet.")
    allowed, text = export_summary(12, 3, True)
    assert allowed and text.startswith("12 verified images will be exported, 3 of them negatives")
