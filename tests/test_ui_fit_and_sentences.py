"""Issue 16: every dialog fits at 80x24 with no label cut off, and the transcript reads as
sentences (no raw event ids). The real app over canned data (Textual's pilot): the checks
are of what is painted, which a terminal multiplexer would not change."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from textual.app import App
from textual.screen import Screen
from textual.widgets import Input, Label, Select, Static

from tests.test_ui_review import sync, until
from tests.ui_fakes import HarnessApp
from workbench.protocol.review import AttemptEntry, CompareResult, DiffStat
from workbench.ui.dialogs import ConfirmScreen, LineInputScreen
from workbench.ui.screens.compare import CompareScreen
from workbench.ui.screens.help import HelpScreen
from workbench.ui.screens.merge import MergeForm, MergeScreen
from workbench.ui.screens.new_session import NewSessionForm, NewSessionScreen
from workbench.ui.widgets.transcript import Transcript

SRC = Path(__file__).resolve().parents[1] / "src" / "workbench"


def painted(app: App[Any]) -> str:
    """The screen's text as the terminal shows it."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def cut_off(screen: Screen[Any], text: str) -> list[str]:
    """Every label, placeholder, choice and line of text of the dialog not shown in full."""
    missing: list[str] = []
    flat = " ".join(text.split())
    for w in screen.query(Label):
        if not w.region.area:
            continue
        label = str(w.render()).strip()
        if label and label not in text:
            missing.append(label)
    for i in screen.query(Input):
        if not i.value and i.placeholder and i.placeholder not in text:
            missing.append(i.placeholder)
    for sel in screen.query(Select):
        shown = next((str(p) for p, v in sel._options if v == sel.value), "")
        if shown and shown not in text:
            missing.append(shown)
    for st in screen.query(Static):
        if isinstance(st, Label) or not st.region.area:  # hidden: a closed choice list
            continue
        for line in str(st.render()).splitlines():
            words = line.split()
            # wrapped lines are fine; a word that is not on screen was cut off
            missing += [w for w in words if w not in flat]
    return missing


def compare_result() -> CompareResult:
    def entry(i: int) -> AttemptEntry:
        return AttemptEntry(id=f"a{i}", name=f"attempt-{i}", state="review", check="passed",
                            stat=DiffStat(files=2, added=10 * i, removed=i), files=[])

    return CompareResult(group="login-fix", sessions=[entry(1), entry(2)])


@sync
async def test_every_dialog_fits_at_80x24() -> None:
    dialogs: list[tuple[str, Screen[Any]]] = [
        ("merge", MergeScreen(MergeForm("b2", "docs-pass", summary="3 files +120 -8 on wb/docs-pass"))),
        ("merge with an error", MergeScreen(MergeForm("b2", "docs-pass"), "merge conflict in src/app.py")),
        ("new session", NewSessionScreen(NewSessionForm(repo="/work/api", recent=["/work/api", "/work/web"]))),
        ("new session, built-in", NewSessionScreen(NewSessionForm(repo="/work/api", agent="builtin"))),
        ("compare", CompareScreen(compare_result(), "a1")),
        ("confirm", ConfirmScreen("3 of 5 hunks not reviewed — merge anyway?",
                                  "3 in the diff view shows them; a marks a hunk reviewed.", yes="merge anyway")),
        ("line input", LineInputScreen("Reject this hunk: why? (sent to the agent)", "the reason",
                                       allow_empty=True, hint="Enter rejects · Esc cancels")),
    ]
    app = HarnessApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        # the main screen: the status line drops details whole, never cuts the counts or `? keys`
        await until(pilot, lambda: "running" in painted(app).splitlines()[-1], "the status line")
        status = painted(app).splitlines()[-1]
        for part in ("1 running", "1 waiting", "1 review", "1 error", "daemon", "? keys"):
            assert part in status, status
        for name, screen in dialogs:
            app.push_screen(screen)
            await until(pilot, lambda s=screen: app.screen is s and s.is_mounted, name)  # type: ignore[misc]
            await pilot.pause(0.2)
            text = painted(app)
            assert cut_off(screen, text) == [], f"{name} at 80x24:\n{text}"
            app.pop_screen()
            await pilot.pause()
        # the help scrolls at 80x24; what it shows first is shown whole
        help_screen = HelpScreen({}, "ctrl+right_square_bracket")
        app.push_screen(help_screen)
        await until(pilot, lambda: app.screen is help_screen and help_screen.is_mounted, "help")
        await pilot.pause(0.2)
        flat = " ".join(painted(app).split())
        first = str(help_screen.query_one("#help-keys", Static).render()).splitlines()[:8]
        assert [w for ln in first for w in ln.split() if w not in flat] == []


def recorded_kinds() -> set[str]:
    """Every event kind the daemon and the agents record, read from their source."""
    kinds: set[str] = set()
    for path in [*(SRC / "daemon").glob("*.py"), *(SRC / "agent").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        kinds |= set(re.findall(r"record\(\s*(?:[\w.]+,\s*)?\"([a-z_]+)\"", text))
        kinds |= set(re.findall(r"add_event\([^,]+,\s*\"([a-z_]+)\"", text))
    kinds |= {"title", "notify", "bell"}  # a terminal's own events, recorded by kind
    return kinds


class TranscriptApp(App[None]):
    def compose(self) -> Any:
        yield Transcript(id="t")


@sync
async def test_the_transcript_reads_as_sentences_never_event_ids() -> None:
    kinds = recorded_kinds()
    assert {"review_mark", "notice", "state", "merge", "check"} <= kinds
    data = {"path": "src/app.py", "reason": "not this", "message": "no API key: set OPENAI_API_KEY",
            "text": "hello", "decision": "approve", "from": "running", "to": "waiting", "status": "failed",
            "exit_code": 1, "base_branch": "main", "value": "bell", "describe": "cat x", "call_id": "c1",
            "name": "shell", "output": "ok", "steps": [], "rejections": 1, "comments": 0}
    app = TranscriptApp()
    async with app.run_test(size=(120, 60)) as pilot:
        t = app.query_one(Transcript)
        for i, kind in enumerate(sorted(kinds | {"some_future_event"}), 1):
            t.add_entry({"seq": i, "kind": kind, "data": dict(data)})
        await pilot.pause(0.2)
        shown = "\n".join(str(w.render()) for w in t.query(Static))
        for kind in kinds | {"some_future_event"}:
            if "_" in kind:
                assert kind not in shown, f"raw event id {kind!r} in the transcript:\n{shown}"
        lines = [ln.strip() for ln in shown.splitlines() if ln.strip()]
        bare = {k for k in kinds if "_" not in k}
        for ln in lines:  # no line is a bare id, or an id followed by a colon
            head = ln.split(":")[0].strip()
            assert head not in bare - {"error"}, f"raw event id as a label: {ln!r}"
        assert "marked a hunk of src/app.py as reviewed" in shown
        assert "Some future event happened" in shown
