"""The one keymap: no key on two actions, the user's overrides merged safely, README's table
generated from it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from autolabel_gui.gui import keys_doc
from autolabel_gui.gui.keymap import KEYMAP, ShortcutsDialog, key_text
from autolabel_gui.gui.user_keys import conflicts, load_user_keymap, merge_keymap, normalize_key
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.fixtures.window import proposal

Key = Qt.Key
Mod = Qt.KeyboardModifier


def keys_of(keymap, action: str) -> tuple[str, ...]:
    return next(b.keys for b in keymap if b.action == action)


def test_the_default_keymap_gives_no_key_to_two_actions(qapp):
    assert conflicts(KEYMAP) == []


def test_every_default_key_is_one_key_qt_knows(qapp):
    """A key Qt cannot parse would be a dead shortcut (and the conflict check would miss it)."""
    for b in KEYMAP:
        for key in b.keys:
            assert normalize_key(key), b.action


def test_conflicts_name_the_key_and_both_actions(qapp):
    clashing = (*KEYMAP, replace(KEYMAP[0], action="other", keys=("d",)))
    assert conflicts(clashing) == [("D", ["next_image", "other"])]


def test_valid_overrides_apply_and_are_normalized(qapp):
    keymap, problems = merge_keymap(KEYMAP, {"zoom_to_box": ["ctrl+0", "Z"], "draw": "E", "rerun": []})
    assert problems == []
    assert keys_of(keymap, "zoom_to_box") == ("Ctrl+0", "Z")
    assert keys_of(keymap, "draw") == ("E",)
    assert keys_of(keymap, "rerun") == ()
    assert keys_of(keymap, "next_image") == keys_of(KEYMAP, "next_image")
    assert [b.action for b in keymap] == [b.action for b in KEYMAP]


def test_a_swap_of_two_keys_is_no_conflict(qapp):
    keymap, problems = merge_keymap(KEYMAP, {"next_image": ["A"], "prev_image": ["D"]})
    assert problems == []
    assert keys_of(keymap, "next_image") == ("A",) and keys_of(keymap, "prev_image") == ("D",)


@pytest.mark.parametrize(("overrides", "bad", "reason"), [
    ({"zoom_to_bx": ["Q"]}, None, "unknown action 'zoom_to_bx' (did you mean 'zoom_to_box'?)"),
    ({"draw": ["Ctrl+Shft+E"]}, "draw", "'Ctrl+Shft+E' is not a key Qt knows"),
    ({"draw": ["Ctrl+K, Ctrl+E"]}, "draw", "is a sequence of keys"),
    ({"draw": [""]}, "draw", "an empty key name"),
    ({"draw": 5}, "draw", "expected a list of key names"),
    ({"draw": ["E", 3]}, "draw", "expected a list of key names"),
    ({"draw": ["D"]}, "draw", "'D' would belong to next_image and draw; draw keep(s) the default keys"),
])
def test_a_bad_entry_is_reported_and_keeps_its_defaults(qapp, overrides, bad, reason):
    keymap, problems = merge_keymap(KEYMAP, {**overrides, "rerun": ["F5"]})
    assert len(problems) == 1 and reason in problems[0]
    if bad is not None:
        assert keys_of(keymap, bad) == keys_of(KEYMAP, bad)
    assert keys_of(keymap, "rerun") == ("F5",)  # the good entry still applies
    assert conflicts(keymap) == []


def test_reverting_one_override_can_reveal_another_clash(qapp):
    """draw takes X (delete's) and next_image takes W (draw's): draw goes back to W, which
    then clashes with next_image, so that goes back too."""
    keymap, problems = merge_keymap(KEYMAP, {"next_image": ["W"], "draw": ["X"], "rerun": ["F5"]})
    assert conflicts(keymap) == []
    assert keys_of(keymap, "draw") == ("W",) and keys_of(keymap, "next_image") == ("D",)
    assert keys_of(keymap, "rerun") == ("F5",)
    assert len(problems) == 2 and "'X' would belong to delete_selected and draw" in problems[0]


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "not valid JSON"),
    (b'["zoom_to_box"]', "must be a JSON object"),
    (b"\xff\xfe{}", "not valid JSON"),
    # issue 21: RecursionError stopped the window from starting
    (b'{"draw": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper than 8 levels"),
    (b'{"draw": ' + b"[" * 900 + b"]" * 900 + b"}", "nested deeper than 8 levels"),
])
def test_a_malformed_file_is_reported_with_its_name(qapp, tmp_path, content, reason):
    path = tmp_path / "keys.json"
    path.write_bytes(content)
    loaded = load_user_keymap(path)
    assert loaded.keymap == KEYMAP
    assert str(path) in loaded.message() and reason in loaded.message()


def test_no_file_is_no_problem(qapp, tmp_path):
    loaded = load_user_keymap(tmp_path / "keys.json")
    assert loaded.keymap == KEYMAP and loaded.problems == () and loaded.message() == ""


def test_a_folder_in_place_of_the_file_is_reported(qapp, tmp_path):
    (tmp_path / "keys.json").mkdir()
    loaded = load_user_keymap(tmp_path / "keys.json")
    assert loaded.keymap == KEYMAP and "not read" in loaded.message()


def write_keys(config: Path, entries: dict) -> Path:
    path = config / "autolabel-gui" / "keys.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def test_the_window_uses_the_users_keys_and_f1_shows_them(open_review, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    write_keys(tmp_path / "config", {"next_image": ["N"], "select_next": ["J"]})
    h = open_review(["a.png", "b.png"], {"a.png": [proposal(10, 10, 50, 60, "cat", 0.9)]})
    h.press(Key.Key_J)  # select_next, moved from Tab
    assert h.state.selected == 0
    h.press(Key.Key_D)  # no longer next_image
    assert h.controller.current == "a.png"
    h.press(Key.Key_N)
    h.wait_shown("b.png")
    shortcuts = {a.objectName(): [s.toString() for s in a.shortcuts()] for a in h.window.actions()}
    assert shortcuts["next_image"] == ["N"] and shortcuts["select_next"] == ["J"]
    dialog = ShortcutsDialog(h.window, h.window.user_keys.keymap)
    rows = {dialog.table.item(r, 3).text(): dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())}
    assert rows["next_image"] == "N" and rows["select_next"] == "J"
    assert rows["prev_image"] == key_text(next(b for b in KEYMAP if b.action == "prev_image"))


def test_a_bad_keys_file_is_named_in_the_status_bar_and_the_defaults_work(open_review, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = write_keys(tmp_path / "config", {"next_image": ["A"], "launch_rockets": ["K"]})
    h = open_review(["a.png", "b.png"])
    tooltip = h.window.message_label.toolTip()
    assert str(path) in tooltip
    assert "'A' would belong to next_image and prev_image" in tooltip
    assert "unknown action 'launch_rockets'" in tooltip
    h.press(Key.Key_D)  # next_image kept its default
    h.wait_shown("b.png")


def test_readme_key_table_is_generated_from_the_keymap(qapp):
    readme = keys_doc.README.read_text(encoding="utf-8")
    assert keys_doc.with_table(readme, keys_doc.markdown_table()) == readme, (
        f"README.md's key table differs from gui/keymap.py KEYMAP: run `{keys_doc.REGENERATE}`")


def test_the_key_table_has_every_action_in_portable_spelling(qapp):
    table = keys_doc.markdown_table()
    assert "| `Ctrl+S` | save now and mark verified | Images | `save` |" in table
    assert "| `1` … `9` | give the selected box class N (class list order) | Boxes | `class_1` … `class_9` |" in table
    assert "| `Shift+Tab` | select the previous box | Boxes | `select_prev` |" in table  # no Backtab alias
    assert all(f"`{b.action}`" in table for b in KEYMAP if b.action not in {f"class_{n}" for n in range(2, 9)})


def test_regenerating_rewrites_only_the_marked_section(qapp, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{keys_doc.START}\nold table\n{keys_doc.END}\nrest\n", encoding="utf-8")
    assert keys_doc.main([str(readme), "--check"]) == 1
    assert keys_doc.main([str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == (
        f"intro\n{keys_doc.START}\n{keys_doc.markdown_table()}\n{keys_doc.END}\nrest\n")
    assert keys_doc.main([str(readme), "--check"]) == 0


def test_focus_stays_on_the_canvas_after_a_users_key(open_review, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    write_keys(tmp_path / "config", {"zoom_in": ["Ctrl+Up"]})
    h = open_review(["a.png"])
    before = h.window.canvas.scale_factor()
    h.press(Key.Key_Up, Mod.ControlModifier)
    assert h.window.canvas.scale_factor() == pytest.approx(before * 1.25)
    assert QApplication.focusWidget() is h.window.canvas


def test_the_merge_needs_no_qt_key_parser():
    """The merge's rules hold with any spelling rule (here: upper case), so they are testable
    apart from Qt's parser."""
    def upper(key: str) -> str:
        if not key.isalnum():
            raise ValueError(f"{key!r} is not a key")
        return key.upper()

    small = (replace(KEYMAP[0], keys=("D",)), replace(KEYMAP[1], keys=("A",)))
    keymap, problems = merge_keymap(small, {"next_image": ["n"], "prev_image": ["n"]}, upper)
    assert keymap == small
    assert problems == ["'N' would belong to next_image and prev_image; next_image and prev_image keep(s) "
                        "the default keys"]
    keymap, problems = merge_keymap(small, {"next_image": ["?"]}, upper)
    assert keymap == small and problems == ["'next_image': '?' is not a key"]
