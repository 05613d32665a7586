"""Settings dialog: fields edited like a user would, the returned copy, refusal of bad class lists."""

from __future__ import annotations

import json

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import parse_args
from autolabel_gui.detection.models import all_models, default_model, model_named
from autolabel_gui.gui.settings_dialog import CUSTOM_MODEL, DOWNLOAD_HINT, SettingsDialog
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox


@pytest.fixture
def original() -> ProjectSettings:
    return ProjectSettings(classes=["person", "cat", "vehicle"], prompts={"vehicle": "car . truck . bus"})


@pytest.fixture
def dialog(qtbot, original, monkeypatch, tmp_path) -> SettingsDialog:
    # The default weights lookup must not find a checkpoint on the developer's machine.
    monkeypatch.setenv("AUTOLABEL_WEIGHTS", str(tmp_path / "absent.pth"))
    dlg = SettingsDialog(original)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def ok_button(dlg: SettingsDialog):
    return dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_fields_show_the_given_settings_and_untouched_dialog_returns_an_equal_copy(dialog, original):
    assert dialog.class_table.rows() == [("person", ""), ("cat", ""), ("vehicle", "car . truck . bus")]
    assert dialog.box_threshold.value() == pytest.approx(0.35)
    assert dialog.device.currentData() == "auto"
    assert dialog.next_to_images.isChecked() and not dialog.annotations.isEnabled()
    result = dialog.settings()
    assert result == original and result is not original


def test_edited_fields_come_back_in_settings(qtbot, dialog, original, tmp_path):
    table = dialog.class_table
    table.set_class(1, "dog", "dog . puppy")  # rename, with a prompt
    table.add_class("cup")
    table.table.setCurrentCell(3, 0)
    qtbot.mouseClick(table.up_button, Qt.MouseButton.LeftButton)  # cup above vehicle
    table.table.setCurrentCell(0, 0)
    qtbot.mouseClick(table.remove_button, Qt.MouseButton.LeftButton)  # drop person
    dialog.box_threshold.setValue(0.5)
    dialog.text_threshold.setValue(0.3)
    dialog.batch_size.setValue(4)
    dialog.device.setCurrentIndex(dialog.device.findData("cuda"))
    dialog.precision.setCurrentIndex(dialog.precision.findData("bf16"))
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"x" * 10)
    dialog.weights.edit.setText(str(weights))
    dialog.config.edit.setText("/cfg/GroundingDINO_SwinT_OGC.py")
    dialog.text_encoder.setText("/models/bert")
    dialog.in_folder.setChecked(True)
    dialog.annotations.edit.setText(str(tmp_path / "voc"))

    assert ok_button(dialog).isEnabled()
    qtbot.mouseClick(ok_button(dialog), Qt.MouseButton.LeftButton)
    assert dialog.result() == SettingsDialog.DialogCode.Accepted

    result = dialog.settings()
    assert result.classes == ["dog", "cup", "vehicle"]
    assert result.prompts == {"dog": "dog . puppy", "vehicle": "car . truck . bus"}
    assert (result.box_threshold, result.text_threshold, result.batch_size) == (0.5, 0.3, 4)
    assert (result.device, result.precision) == ("cuda", "bf16")
    assert result.weights == str(weights)
    assert result.config == "/cfg/GroundingDINO_SwinT_OGC.py"
    assert result.text_encoder == "/models/bert"
    assert result.annotations_dir == str(tmp_path / "voc")
    assert original.classes == ["person", "cat", "vehicle"]  # the input is never modified
    result.ontology()  # and the result is usable


def test_duplicate_class_names_are_refused_with_a_message(qtbot, dialog):
    dialog.class_table.set_class(2, " cat ")
    assert "unique" in dialog.error.text() and '"cat"' in dialog.error.text()
    assert dialog.error.isVisible()
    assert not ok_button(dialog).isEnabled()
    dialog.accept()  # e.g. Enter pressed: still refused
    assert dialog.isVisible() and dialog.result() != SettingsDialog.DialogCode.Accepted

    dialog.class_table.set_class(2, "truck")
    assert ok_button(dialog).isEnabled() and dialog.error.text() == ""


def _field_geometry(dialog: SettingsDialog) -> list[tuple[int, int, int, int]]:
    """Where each field is in the dialog, as the pointer sees it."""
    fields = (dialog.class_table.table, dialog.box_threshold, dialog.text_threshold, dialog.batch_size,
              dialog.device, dialog.precision, dialog.weights.edit, dialog.config.edit,
              dialog.text_encoder, dialog.annotations.edit, ok_button(dialog))
    out = []
    for widget in fields:
        top_left = widget.mapTo(dialog, widget.rect().topLeft())
        out.append((top_left.x(), top_left.y(), widget.width(), widget.height()))
    return out


def test_form_does_not_move_when_a_message_appears_or_goes(qtbot, dialog):
    qtbot.wait(10)  # let the first layout settle
    before = _field_geometry(dialog)
    dialog.class_table.set_class(2, "cat")  # duplicate: a message appears
    qtbot.wait(10)
    assert "unique" in dialog.error.text()
    assert _field_geometry(dialog) == before
    dialog.in_folder.setChecked(True)  # another message, a long one
    dialog.class_table.set_class(2, "vehicle")
    qtbot.wait(10)
    assert "annotation folder" in dialog.error.text()
    assert _field_geometry(dialog) == before
    dialog.next_to_images.setChecked(True)  # the message goes
    qtbot.wait(10)
    assert dialog.error.text() == ""
    assert _field_geometry(dialog) == before


def test_add_puts_the_edit_cursor_in_the_new_class_name(qtbot, dialog):
    from PySide6.QtWidgets import QLineEdit

    qtbot.mouseClick(dialog.class_table.add_button, Qt.MouseButton.LeftButton)
    table = dialog.class_table.table
    assert (table.currentRow(), table.currentColumn()) == (3, 0)
    assert table.state() == table.State.EditingState
    editors = [e for e in table.viewport().findChildren(QLineEdit) if e.isVisible()]
    assert len(editors) == 1 and editors[0].geometry().intersects(table.visualItemRect(table.item(3, 0)))
    assert not editors[0].geometry().intersects(table.visualItemRect(table.item(3, 1)))
    qtbot.keyClicks(editors[0], "bottle")
    assert editors[0].text() == "bottle"
    qtbot.keyClick(editors[0], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.class_table.rows()[3] == ("bottle", ""), timeout=2000)
    assert ok_button(dialog).isEnabled()


def test_empty_class_name_is_refused(dialog):
    dialog.class_table.add_class("")
    assert "row 4" in dialog.error.text() and "no name" in dialog.error.text()
    assert not ok_button(dialog).isEnabled()
    dialog.class_table.remove_class(3)
    assert ok_button(dialog).isEnabled()


def test_chosen_annotation_folder_must_be_given(dialog):
    dialog.in_folder.setChecked(True)
    assert dialog.annotations.isEnabled()
    assert not ok_button(dialog).isEnabled() and "annotation folder" in dialog.error.text()
    dialog.next_to_images.setChecked(True)
    assert ok_button(dialog).isEnabled()
    assert dialog.settings().annotations_dir is None


def test_status_says_whether_files_set_by_hand_are_there_and_how_to_get_them(dialog, tmp_path):
    assert DOWNLOAD_HINT in dialog.weights_status.text()  # default lookup finds nothing here
    dialog.weights.edit.setText(str(tmp_path / "missing.pth"))
    assert dialog.weights_status.text() == "Grounding DINO weights not found."
    assert str(tmp_path / "missing.pth") in dialog.weights_status.toolTip()  # where it looked
    assert "autolabel-gui weights download" in dialog.weights_status.toolTip()
    real = tmp_path / "real.pth"
    real.write_bytes(b"\0" * 2_000_000)
    dialog.weights.edit.setText(str(real))
    assert dialog.weights_status.text().startswith("Found")


def test_custom_files_run_on_the_backend_chosen_for_them(dialog, tmp_path):
    dialog.backend.setCurrentIndex(dialog.backend.findData("transformers"))
    assert dialog.model.currentText() == CUSTOM_MODEL  # no catalogue model is the default files on it
    assert dialog.weights_status.text() == "The transformers backend needs a model."
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "config.json").write_text('{"model_type": "grounding-dino"}')
    dialog.weights.edit.setText(str(converted))
    assert dialog.weights_status.text().startswith("Found")
    assert (dialog.settings().backend, dialog.settings().weights) == ("transformers", str(converted))


def test_every_precision_is_offered_and_unknown_values_are_kept(qtbot, original):
    from autolabel_gui.detection.compute_path import PRECISIONS

    dlg = SettingsDialog(ProjectSettings(classes=["a"], device="xpu"))
    qtbot.addWidget(dlg)
    assert [dlg.precision.itemData(i) for i in range(dlg.precision.count())] == list(PRECISIONS)
    assert "int8 linear layers (CPU only)" in [dlg.precision.itemText(i) for i in range(dlg.precision.count())]
    assert dlg.settings().device == "xpu"  # a hand-written value is shown, not silently replaced


def _open(qtbot, settings: ProjectSettings) -> SettingsDialog:
    dlg = SettingsDialog(settings)
    qtbot.addWidget(dlg)
    return dlg


def test_model_list_shows_every_catalogue_model_with_its_ap_and_size_and_custom(dialog):
    texts = [dialog.model.itemText(i) for i in range(dialog.model.count())]
    assert len(texts) == len(all_models()) + 1 and texts[-1] == CUSTOM_MODEL
    mm_gd = model_named("mm-grounding-dino-t")
    text = texts[[m.name for m in all_models()].index(mm_gd.name)]
    assert mm_gd.title in text and "LVIS AP 40.5" in text and "COCO AP 50.6" in text and "690 MB" in text
    assert dialog.model.currentData() == default_model().name  # untouched settings run the default


def test_the_settings_model_is_preselected_and_files_set_by_hand_are_custom(qtbot, original, tmp_path):
    llmdet = original.with_model(model_named("llmdet-t"))
    assert _open(qtbot, llmdet).model.currentData() == "llmdet-t"
    assert _open(qtbot, llmdet.with_model(default_model())).model.currentData() == default_model().name
    by_hand = _open(qtbot, ProjectSettings(weights=str(tmp_path / "mine.pth")))
    assert by_hand.model.currentText() == CUSTOM_MODEL
    assert by_hand.settings().weights == str(tmp_path / "mine.pth")


@pytest.mark.parametrize("name", [m.name for m in all_models()])
def test_choosing_a_model_gives_what_the_model_option_gives_for_the_same_folder(qtbot, tmp_path, name):
    folder = tmp_path / "images"
    (folder / ".autolabel").mkdir(parents=True)
    (folder / ".autolabel" / "project.json").write_text(json.dumps({
        "classes": ["cat", "dog"], "box_threshold": 0.6, "batch_size": 4,
        "backend": "transformers", "extra": {"image_size": "96", "revision": "old"}}))
    loaded = ProjectSettings.load(folder)
    dlg = _open(qtbot, loaded)
    dlg.choose_model(name)
    cli = loaded.with_args(parse_args(["label", str(folder), "--model", name]))
    assert dlg.settings() == cli
    assert dlg.model.currentData() == name


def test_editing_a_model_file_by_hand_switches_to_custom_and_custom_keeps_the_files(qtbot, dialog, tmp_path):
    dialog.choose_model("llmdet-t")
    assert dialog.weights.value() == model_named("llmdet-t").hub_id
    qtbot.keyClicks(dialog.weights.edit, "-mine")
    assert dialog.model.currentText() == CUSTOM_MODEL
    assert dialog.settings().weights == "rziga/llmdet_tiny-mine" and dialog.settings().backend == "transformers"
    dialog.choose_model("grounding-dino-t-ogc")
    assert dialog.weights.value() is None and dialog.settings().backend == "grounding_dino"
    dialog.config.edit.setText(str(tmp_path / "swinb.py"))  # e.g. with Browse…
    assert dialog.model.currentText() == CUSTOM_MODEL
    dialog.config.edit.clear()
    assert dialog.model.currentData() == "grounding-dino-t-ogc"  # the default files again
    dialog.weights.edit.setText(str(tmp_path / "mine.pth"))
    dialog.choose_model("")
    assert dialog.settings().weights == str(tmp_path / "mine.pth")  # Custom changes no file


def test_model_status_says_whether_its_files_are_here_and_how_to_get_them(qtbot, dialog, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    dialog.choose_model("llmdet-t")
    status = dialog.weights_status
    assert status.text() == f"Not downloaded. {DOWNLOAD_HINT} --model llmdet-t"
    assert "not in the Hugging Face cache" in status.toolTip()  # the backend spec's own check
    snapshot = tmp_path / "hf" / "models--rziga--llmdet_tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "mm-grounding-dino"}')
    (tmp_path / "hf" / "models--rziga--llmdet_tiny" / "refs").mkdir()
    (tmp_path / "hf" / "models--rziga--llmdet_tiny" / "refs" / "main").write_text("abc123")
    dialog.choose_model("llmdet-t")
    assert status.text().startswith("Downloaded") and status.toolTip() == ""

    dialog.choose_model("grounding-dino-t-ogc")
    assert status.text() == f"Not downloaded. {DOWNLOAD_HINT} --model grounding-dino-t-ogc"
    checkpoint = tmp_path / "groundingdino_swint_ogc.pth"
    checkpoint.write_bytes(b"x")
    monkeypatch.setenv("AUTOLABEL_WEIGHTS", str(checkpoint))
    dialog.choose_model("grounding-dino-t-ogc")
    assert status.text().startswith("Downloaded")


def test_picking_a_model_in_the_list_applies_it_and_picking_it_again_restores_its_thresholds(qtbot, dialog):
    qtbot.keyClick(dialog.model, Qt.Key.Key_Down)  # the list's next model, as a user picks it
    second = all_models()[1]
    assert dialog.model.currentData() == second.name and dialog.settings().backend == second.backend
    dialog.box_threshold.setValue(0.8)
    assert dialog.model.currentData() == second.name  # a threshold is no model file
    dialog.model.activated.emit(dialog.model.currentIndex())
    assert dialog.box_threshold.value() == pytest.approx(second.box_threshold)


def test_the_class_table_shows_the_nine_classes_digits_reach_without_scrolling(qtbot, monkeypatch, tmp_path):
    """Seen: the table showed four rows; a class list is read (and reordered) at a glance."""
    monkeypatch.setenv("AUTOLABEL_WEIGHTS", str(tmp_path / "absent.pth"))
    dlg = SettingsDialog(ProjectSettings(classes=[f"class{i}" for i in range(9)]))
    qtbot.addWidget(dlg)
    dlg.show()
    table = dlg.class_table.table
    qtbot.waitExposed(dlg)
    last = table.visualItemRect(table.item(8, 0))
    assert last.isValid() and last.bottom() <= table.viewport().height()
    assert table.verticalScrollBar().maximum() == 0
