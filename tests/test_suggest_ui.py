"""The suggestions inbox in the real app over the fake daemon link: it lists what the daemon
found, the status bar counts it, one key starts a session with the agent last used."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.widgets import OptionList, Static

from tests.conftest import make_repo
from tests.ui_fakes import HarnessApp, session
from tests.wb import Wb
from workbench import paths
from workbench.protocol import suggest as ps
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.suggestions import SuggestionsScreen

SIZE = (110, 32)


def suggestion(sid: str, source: ps.Source, title: str, evidence: str) -> ps.Suggestion:
    return ps.Suggestion(id=sid, repo="/work/api", source=source, title=title, evidence=evidence,
                         prompt=f"Fix it.\n\n{evidence}", rank=1.0, locations=[], sessions=[])


ITEMS = [suggestion("c0ffee0001", "check", "Failing test tests/test_math.py::test_add", "E  assert -1 == 3"),
         suggestion("c0ffee0002", "todo", "2 TODOs in src/db.py: retry", "src/db.py:4: # TODO: retry")]


def serve_suggestions(app: HarnessApp) -> list[tuple[str, dict[str, Any]]]:
    """The fake daemon answers the suggestion methods; returns the calls it got."""
    link: Any = app.link
    plain = link.call
    got: list[tuple[str, dict[str, Any]]] = []
    items = list(ITEMS)

    async def call(method: str, **params: Any) -> Any:
        if method == "suggest":
            got.append((method, params))
            return ps.SuggestReply(repo=params["repo"], head="a" * 40, scanned_at=1.0, scanning=False,
                                   suggestions=list(items), dismissed=len(ITEMS) - len(items), errors=[])
        if method == "suggest_dismiss":
            got.append((method, params))
            items[:] = [x for x in items if x["id"] != params["id"]]
            return ps.SuggestDismissResult(dismissed=params["id"])
        if method == "suggest_start":
            got.append((method, params))
            s = session("n1", "fix-add", "starting", agent=params.get("agent", "shell"))
            return ps.SuggestStartResult(suggestion=params["id"], sessions=[s], warnings=[])
        return await plain(method, **params)

    link.call = call
    return got


async def until(pilot: Any, cond: Any, tries: int = 1200) -> None:  # 60 s: the machine may be loaded
    for _ in range(tries):
        if cond():
            return
        await pilot.pause(0.05)
    assert cond(), "condition not reached"


def test_inbox_lists_counts_dismisses_and_enter_starts_with_the_last_agent() -> None:
    async def run() -> None:
        app = HarnessApp()
        got = serve_suggestions(app)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: bool(app.main.panes))
            app.layout.last_new = {"agent": "claude"}
            await pilot.press("exclamation_mark")
            await until(pilot, lambda: isinstance(app.screen, SuggestionsScreen) and len(app.screen.items) == 2)
            screen = app.screen
            assert isinstance(screen, SuggestionsScreen) and screen.repo == "/work/api"
            assert screen.query_one(OptionList).option_count == 2
            assert "assert -1 == 3" in str(screen.query_one("#suggest-detail", Static).render())
            assert "2 suggestions" in str(app.main.status.render())
            await pilot.press("down")  # the TODO
            await pilot.press("x")
            await until(pilot, lambda: len(screen.items) == 1)
            assert ("suggest_dismiss", {"id": "c0ffee0002"}) in got
            await pilot.press("enter")
            await until(pilot, lambda: "n1" in app.sessions and app.screen is app.main)
            assert ("suggest_start", {"id": "c0ffee0001", "agent": "claude"}) in got
            assert app.layout.focus == "n1"

    asyncio.run(run())


def test_e_opens_the_new_session_dialog_with_the_prompt_and_starts_the_edit() -> None:
    async def run() -> None:
        from textual.widgets import Input

        from workbench.ui.screens.new_session import NewSessionScreen

        app = HarnessApp()
        got = serve_suggestions(app)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: bool(app.main.panes))
            await pilot.press("exclamation_mark")
            await until(pilot, lambda: isinstance(app.screen, SuggestionsScreen) and len(app.screen.items) == 2)
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, NewSessionScreen))
            prompt = app.screen.query_one("#prompt", Input)
            assert prompt.value.startswith("Fix it.")
            prompt.value = "Fix add() and nothing else"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: any(m == "suggest_start" for m, _ in got))
            start = next(p for m, p in got if m == "suggest_start")
            assert start["id"] == "c0ffee0001" and start["prompt"] == "Fix add() and nothing else"

    asyncio.run(run())


def test_the_inbox_keys_are_in_the_keymap_with_descriptions() -> None:
    from workbench.ui.keymap import DEFAULT_KEYS, DESCRIPTIONS

    for b in SuggestionsScreen.BINDINGS:
        assert b.id in DEFAULT_KEYS and b.key == DEFAULT_KEYS[b.id] and b.id in DESCRIPTIONS  # type: ignore[union-attr]


def test_live_inbox_enter_starts_a_real_session_on_the_suggestion(wb: Wb, tmp_path: Path) -> None:
    """Against a real daemon: the inbox shows the repository's TODO, enter starts the agent
    last used from the new-session dialog on it."""
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[session]\nsandbox = "off"\n[suggest]\ngh = false\nlint = false\n')
    repo = make_repo(tmp_path / "live", {"app.py": "x = 1  # TODO: make x configurable\n"})
    first = wb.new(repo, "--sandbox", "off", "--name", "first", "--agent", "sleep 1000")
    wb.wait_state(first, "running")

    async def scenario() -> None:
        app = WorkbenchApp(strict=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: first in app.main.panes)
            app.layout.last_new = {"agent": "sleep 999"}
            await pilot.press("exclamation_mark")
            await until(pilot, lambda: isinstance(app.screen, SuggestionsScreen) and app.screen.items)
            screen = app.screen
            assert isinstance(screen, SuggestionsScreen)
            (todo,) = screen.items
            assert todo["title"].startswith("1 TODO in app.py") and "make x configurable" in todo["evidence"]
            await pilot.press("enter")
            await until(pilot, lambda: app.screen is app.main and len(app.sessions) == 2)
            new = next(s for s in app.sessions.values() if s["id"] != first)
            assert new["extra"]["suggestion"] == todo["id"] and new["agent"] == "sleep 999"
            assert "make x configurable" in wb.session(new["id"])["prompt"]

    asyncio.run(scenario())
