"""The suggestions inbox in the real app over the fake daemon link: it lists what the daemon
found, the status bar counts it, one key starts a session with the agent last used."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from textual.widgets import OptionList, Static

from tests.conftest import git, make_repo
from tests.helpers import wait_for
from tests.test_suggest_cli import CHECK, FAILING, FIXED, SANDBOX, by_source, repo_config, suggestions
from tests.ui_fakes import HarnessApp, session
from tests.wb import Wb
from workbench import paths
from workbench.protocol import suggest as ps
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.suggestions import SuggestionsScreen

if TYPE_CHECKING:
    from tests.agent_support import Factory

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
            # the status bar counts what is left
            await until(pilot, lambda: "! 1 suggestion " in str(app.main.status.render()))
            await pilot.press("enter")
            await until(pilot, lambda: "n1" in app.sessions and app.screen is app.main)
            assert ("suggest_start", {"id": "c0ffee0001", "agent": "claude"}) in got
            assert app.layout.focus == "n1"

    asyncio.run(run())


def test_a_starts_the_number_of_attempts_typed() -> None:
    async def run() -> None:
        from textual.widgets import Input

        from workbench.ui.dialogs import LineInputScreen

        app = HarnessApp()
        got = serve_suggestions(app)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: bool(app.main.panes))
            app.layout.last_new = {"agent": "claude"}
            await pilot.press("exclamation_mark")
            await until(pilot, lambda: isinstance(app.screen, SuggestionsScreen) and len(app.screen.items) == 2)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, LineInputScreen))
            line = app.screen.query_one(Input)
            assert line.value == "3"  # the default: enter alone starts three
            line.value = "4"
            await pilot.press("enter")
            await until(pilot, lambda: any(m == "suggest_start" for m, _ in got))
            assert ("suggest_start", {"id": "c0ffee0001", "agent": "claude", "attempts": 4}) in got
            await until(pilot, lambda: app.screen is app.main)

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


@pytest.mark.timeout(300)
def test_done_when_two_keys_start_the_builtin_agent_on_a_failing_test_and_merging_clears_it(
        wb: Wb, tmp_path: Path, isolated_env: Path, fake_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17's "done when", through the UI against a real daemon: `workbench suggest` lists
    the failing test with its output; in the UI `!` and `enter` (no prompt typed) start the
    configured built-in agent on it, which fixes it (the fake server) and the session reaches
    review with a passing check. Merged, the rescan after the merge (no `--refresh`, no
    listing asked for) drops the failing test and the TODO the fix removed."""
    from tests.agent_support import calls, patch
    from workbench.fakes.model_server import Script, Turn

    buggy = FAILING.replace("a - b", "a - b  # TODO: should add")
    fix = ("*** Begin Patch\n*** Update File: tests/test_math.py\n@@ def add(a, b):\n"
           "-    return a - b  # TODO: should add\n+    return a + b\n*** End Patch\n")
    fake = fake_factory([Script("Fix the failing test `tests/test_math.py::test_add`", [
        calls(patch(fix)), Turn(text="Fixed add().")])])
    user = isolated_env / "config" / "workbench" / "config.toml"
    user.write_text('[session]\nagent = "builtin"\napproval = "full-auto"\nprovider = "fake"\n'
                    + ("" if SANDBOX else 'sandbox = "off"\n')
                    + f'\n[providers.fake]\nbase_url = "{fake.base_url}"\nmodel = "fake-model"\n')
    repo = make_repo(tmp_path / "repo", {"tests/test_math.py": buggy})
    repo_config(repo, f'[check]\ncommand = {json.dumps(CHECK)}\n[suggest]\nlint = false\ngh = false\n')
    listed = suggestions(wb, repo, "--refresh")
    (check,) = by_source(listed, "check")
    (todo,) = by_source(listed, "todo")
    assert "assert -1 == 3" in check["evidence"] and "TODO: should add" in todo["evidence"]
    monkeypatch.chdir(repo)  # the UI started in the repository: its inbox is the repository's

    async def two_keys() -> str:
        app = WorkbenchApp(strict=True)
        keys = 0
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link.up)
            await pilot.press("exclamation_mark")
            keys += 1
            await until(pilot, lambda: isinstance(app.screen, SuggestionsScreen) and bool(app.screen.items))
            assert isinstance(app.screen, SuggestionsScreen) and app.screen.items[0]["id"] == check["id"]
            await pilot.press("enter")
            keys += 1
            await until(pilot, lambda: app.screen is app.main and len(app.sessions) == 1)
        assert keys == 2
        return str(next(iter(app.sessions)))

    sid = asyncio.run(two_keys())
    s = wait_for(lambda: (x := wb.session(sid))["state"] == "review" and x["check"] == "passed" and x, 120,
                 what="review with a passing check")
    assert s["agent"] == "builtin" and s["prompt"] == check["prompt"] and s["extra"]["suggestion"] == check["id"]
    assert fake.requests
    checked_at = json.loads(paths.state_dir().joinpath("suggestions-cache.json").read_text())[listed["repo"]][
        "check_at"]
    wb.run("merge", sid, "--squash", "-m", "fix add", timeout=120)
    assert (repo / "tests" / "test_math.py").read_text() == FIXED
    merged = git(repo, "rev-parse", "HEAD").strip()

    def rescanned() -> dict[str, Any] | None:  # the daemon's kept scan, read without asking for a listing
        entry = json.loads(paths.state_dir().joinpath("suggestions-cache.json").read_text()).get(listed["repo"])
        return entry if entry and entry["head"] == merged and entry["check_at"] > checked_at else None

    entry = wait_for(rescanned, 120, interval=0.2, what="the scan after the merge")
    assert entry["check"] == [] and [f for f in entry["found"] if f["source"] == "todo"] == []
    assert suggestions(wb, repo)["suggestions"] == []
