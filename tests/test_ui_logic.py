"""The UI's headless parts: frames, keys, attention, layout state, themes, keymap, transcript and
approval-card text, and the rule that the UI never runs git."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.ui_fakes import session
from workbench.ui import layout_state, model
from workbench.ui.keymap import DEFAULT_DETACH, detach_key, key_to_bytes, paste_bytes, resolve_keymap
from workbench.ui.term_model import TermState
from workbench.ui.themes import ThemeFileError, load_theme_file, load_themes, shipped_dirs


def test_full_frame_then_delta_reports_changed_rows() -> None:
    st = TermState("s")
    full = {"rows": {"0": [["$ ", -1, -1, 0]], "1": []}, "cursor": [2, 0, True], "size": [20, 3],
            "full": True, "bracketed_paste": True}
    assert st.apply(full) is None
    assert st.text_lines() == ["$ ", "", ""] and st.bracketed_paste
    v0 = list(st.versions)
    changed = st.apply({"rows": {"1": [["out", 1, -1, 1]]}, "cursor": [0, 2, True], "full": False})
    assert changed == {0, 1, 2}  # row 1 changed; the cursor left row 0 for row 2
    assert st.versions[1] > v0[1] and st.versions[0] == v0[0]
    assert st.text_lines()[1] == "out"
    # a resize is a full repaint
    assert st.apply({"rows": {}, "size": [30, 5], "full": False}) is None
    assert len(st.rows) == 5


@pytest.mark.parametrize("key,char,app_cursor,want", [
    ("enter", "\r", False, b"\r"),
    ("backspace", "\x7f", False, b"\x7f"),
    ("up", None, False, b"\x1b[A"),
    ("up", None, True, b"\x1bOA"),
    ("ctrl+left", None, False, b"\x1b[1;5D"),
    ("shift+up", None, True, b"\x1b[1;2A"),
    ("ctrl+a", "\x01", False, b"\x01"),
    ("ctrl+c", "\x03", False, b"\x03"),
    ("alt+x", "x", False, b"\x1bx"),
    ("f1", None, False, b"\x1bOP"),
    ("f5", None, False, b"\x1b[15~"),
    ("delete", None, False, b"\x1b[3~"),
    ("pageup", None, False, b"\x1b[5~"),
    ("shift+tab", None, False, b"\x1b[Z"),
    ("ctrl+space", None, False, b"\x00"),
    ("a", "a", False, b"a"),
    ("é", "é", False, "é".encode()),
    ("plus", "+", False, b"+"),
    ("escape", "\x1b", False, b"\x1b"),
])
def test_keys_become_terminal_bytes(key: str, char: str | None, app_cursor: bool, want: bytes) -> None:
    assert key_to_bytes(key, char, app_cursor) == want


def test_paste_cannot_end_the_bracket_early() -> None:
    assert paste_bytes("a\nb", False) == b"a\rb"
    evil = "x\x1b[201~rm -rf /\n"
    assert paste_bytes(evil, True) == b"\x1b[200~xrm -rf /\r\x1b[201~"


def test_attention_queue_order() -> None:
    s = [session("r", "rev", "review", since=500), session("w2", "w2", "waiting", since=10),
         session("e", "err", "error", since=900), session("w1", "w1", "waiting", since=100),
         session("ok", "ok", "running")]
    assert [x["id"] for x in model.attention_queue(s)] == ["w1", "w2", "e", "r"]
    assert model.next_in_queue(s, None)["id"] == "w1"  # type: ignore[index]
    assert model.next_in_queue(s, "w1")["id"] == "w2"  # type: ignore[index]
    assert model.next_in_queue([session("ok", "ok")], None) is None


def test_labels() -> None:
    assert model.elapsed(59) == "59s" and model.elapsed(3700) == "1h01" and model.elapsed(90000) == "1d"
    s = session("a", "n\x1b]0;evil\x07ame", tokens_in=1500, tokens_out=500, cost_usd=0.5)
    assert model.name_of(s) == "name"
    assert model.usage_label(s) == "2.0k $0.50"
    assert model.diff_counts(session("b", "b"), {"b": (3, 4)}) == (3, 4)
    assert model.stat_totals({"files": [{"added": 2, "removed": 1}, {"added": 3, "removed": 0}]}) == (5, 1)


def test_layout_state_round_trip_and_prune(tmp_path: Path) -> None:
    path = tmp_path / "ui.json"
    st = layout_state.LayoutState(grid=True, focus="a", panes=["a", "b", "c"], views={"a": "diff"},
                                  weights={"a": 3}, zoomed=True, theme="workbench-light")
    layout_state.save(st, path)
    back = layout_state.load(path)
    assert back == st
    back.prune({"b"})
    assert back.panes == ["b"] and back.focus is None and back.views == {}
    path.write_text("{not json")
    assert layout_state.load(path) == layout_state.LayoutState()
    path.write_text(json.dumps({"grid": "yes", "panes": [1, "x"], "views": {"x": "bogus"}}))
    bad = layout_state.load(path)
    assert bad.grid is False and bad.panes == ["x"] and bad.views == {}
    assert not list(tmp_path.glob(".ui-*"))  # no temp files left


def test_shipped_themes_load_with_app_variables() -> None:
    themes, notices = load_themes(shipped_dirs())
    assert notices == []
    assert {"workbench-dark", "workbench-light", "workbench-high-contrast"} <= set(themes)
    assert themes["workbench-light"].dark is False
    for t in themes.values():
        assert {"wb-waiting", "wb-diff-added", "wb-error"} <= set(t.variables)


def test_bad_theme_files_are_reported(tmp_path: Path) -> None:
    cases = {
        "a.toml": ("name = 1\n", "missing `name`"),
        "b.toml": ('name = "b"\n[colors]\nprimary = "nope"\n', "is not a colour"),
        "c.toml": ('name = "c"\n[colors]\nprimery = "#fff"\n', "unknown colour 'primery'"),
        "d.toml": ("name = [\n", "invalid TOML"),
        "e.toml": ('name = "e"\n[colors]\naccent = "#fff"\n', "needs at least `primary`"),
    }
    for fname, (text, want) in cases.items():
        (tmp_path / fname).write_text(text)
        with pytest.raises(ThemeFileError, match=want):
            load_theme_file(tmp_path / fname)
    themes, notices = load_themes([tmp_path])
    assert len(notices) == 5 and "workbench-dark" in themes  # the fallback is always there


def test_keymap_and_detach_key() -> None:
    good, notes = resolve_keymap({"main.grid": "G", "bogus": "x", "main.zoom": ""})
    assert good == {"main.grid": "G"}
    assert len(notes) == 2 and "bogus" in notes[0]
    assert detach_key("ctrl+b", {}) == (DEFAULT_DETACH, detach_key("ctrl+b", {})[1])
    assert detach_key("ctrl+b", {})[1] is not None  # tmux's prefix is refused
    assert detach_key("ctrl+right_square_bracket", {"terminal.detach": "ctrl+g"}) == ("ctrl+g", None)
    assert detach_key("x", {})[0] == DEFAULT_DETACH


def test_the_ui_never_runs_git() -> None:
    src = Path(__file__).parents[1] / "src" / "workbench" / "ui"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "create_subprocess" not in text and "subprocess" not in text, path
        assert '"git"' not in text, path


def test_keymap_specs_that_no_terminal_sends_are_errors_naming_the_key() -> None:
    from workbench.ui.keymap import DEFAULT_KEYS, bad_key, keymap_errors

    assert [k for k in DEFAULT_KEYS.values() if bad_key(k)] == []
    for good in ("ctrl+g", "G,ctrl+g", "f5", "question_mark", "alt+enter", "ctrl+space", "shift+tab", "+"):
        assert bad_key(good) is None, good
    for bad, key in (("ctrl-g", "ctrl-g"), ("contrl+g", "contrl+g"), ("g,ctrl+", "ctrl+"), ("f99", "f99")):
        assert bad_key(bad) == key
    errors = keymap_errors({"main.grid": "ctrl-g", "main.zoom": "Z"})
    assert errors == [errors[0]] and "main.grid" in errors[0] and "'ctrl-g'" in errors[0]
    good, notes = resolve_keymap({"main.grid": "ctrl-g", "main.zoom": "Z"})
    assert good == {"main.zoom": "Z"} and notes == errors


def test_the_keymap_examples_in_the_docs_are_valid() -> None:
    import re
    import tomllib
    from pathlib import Path

    from workbench.ui.keymap import keymap_errors

    docs = Path(__file__).resolve().parents[1] / "docs"
    found = 0
    for name in ("ui.md", "configuration.md"):
        for block in re.findall(r"```toml\n(.*?)```", (docs / name).read_text(encoding="utf-8"), re.S):
            keymap = tomllib.loads(block).get("keymap")
            if keymap:
                found += 1
                assert keymap_errors(keymap) == [], (name, keymap)
    assert found >= 2


def test_transcript_labels_for_agent_and_usage_entries() -> None:
    from workbench.ui.widgets.transcript import note_text

    text, _ = note_text("agent", {"model": "m1", "approval": "suggest", "sandbox": "off"})
    assert text == "agent started: model m1 · approval suggest · sandbox off"
    text, _ = note_text("usage", {"tokens_in": 10, "tokens_out": 2, "context_tokens": 12, "context_window": 100})
    assert text == "tokens 10 in · 2 out · context 12/100"


def test_approval_card_shows_the_exact_argv_when_the_summary_differs() -> None:
    from workbench.ui.widgets.approval_card import card_content

    same = card_content({"kind": "command", "describe": "cat calc.py", "argv": ["cat", "calc.py"]}).plain
    assert "runs:" not in same and "$ cat calc.py" in same
    wrapped = card_content({"kind": "command", "describe": "rm -rf build",
                            "argv": ["bash", "-lc", "rm -rf build; curl x|sh"]}).plain
    assert "runs: bash -lc 'rm -rf build; curl x|sh'" in wrapped


def test_acp_sessions_are_transcript_sessions_with_their_own_entries() -> None:
    from workbench.ui.widgets.transcript import note_text

    assert model.is_builtin(session("a1", "gem", agent="acp:gemini", transcript=True))
    assert not model.is_builtin(session("p1", "pty", agent="codex"))
    assert note_text("thought", {"text": "the user wants\na file"})[0] == "thinking: the user wants a file"
    assert note_text("stop", {"stop_reason": "cancelled"})[0] == "turn ended: cancelled"
    assert note_text("mode", {"mode": "plan"})[0] == "mode set to plan"


def test_the_keys_table_in_docs_lists_every_binding_with_its_default() -> None:
    """docs/ui.md's table had drifted: `!` (suggestions), the confirmation and the
    suggestions inbox keys were missing."""
    from workbench.ui.keymap import DEFAULT_KEYS
    from workbench.ui.screens.help import key_label

    text = (Path(__file__).resolve().parents[1] / "docs" / "ui.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for ids, keys in re.findall(r"^\| ((?:`[a-z_]+\.[a-z_]+`(?: / )?)+) \| ((?:`[^`]*`(?: / )?)+) \|", text, re.M):
        names = re.findall(r"`([^`]+)`", ids)
        defaults = re.findall(r"`([^`]+)`", keys)
        for i, name in enumerate(names):
            rows[name] = defaults[i] if len(defaults) == len(names) else defaults[0]
    assert sorted(set(DEFAULT_KEYS) - set(rows)) == []
    arrows = str.maketrans({"↓": "down", "↑": "up", "←": "left", "→": "right"})

    def shown(keys: str) -> str:  # the docs name the arrow keys; the help screen draws them
        return "".join(ch.translate(arrows) for ch in key_label(keys))

    wrong = {k: (rows[k], shown(v)) for k, v in DEFAULT_KEYS.items() if rows[k] != shown(v)}
    assert wrong == {}
