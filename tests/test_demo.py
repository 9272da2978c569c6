"""`workbench demo --no-ui`: the sample repo, the three scripted sessions and the two
attempts (the built-in agent and the scripted terminal CLI), for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import wait_for
from tests.wb import Wb
from workbench.demo.script import DEMO_MODEL


def test_demo_shows_every_promise_offline(wb: Wb, tmp_path: Path, isolated_env: Path) -> None:
    config = isolated_env / "config" / "workbench" / "config.toml"
    config.write_text("# mine\n")
    demo_dir = tmp_path / "demo"
    out = wb.run("demo", "--no-ui", "--dir", str(demo_dir)).stdout
    assert f"demo repo   {demo_dir}" in out and DEMO_MODEL in out and "what to run:" in out
    assert (demo_dir / "calc.py").exists() and (demo_dir / ".git").is_dir()

    def states() -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in wb.json("ls")}

    def settled() -> dict[str, dict[str, Any]] | None:
        st = states()
        want = {"demo-fix-bug": ("review", "passed"), "demo-approval": ("waiting", "none"),
                "demo-error": ("error", "none"), "demo-attempt-1": ("review", "failed"),
                "demo-attempt-2": ("waiting", "none")}
        return st if all((st[n]["state"], st[n]["check"]) == w for n, w in want.items()) else None

    st = wait_for(settled, 60, what="the demo sessions to settle")
    builtin = {n: s for n, s in st.items() if n != "demo-attempt-2"}
    assert all(s["model"] == DEMO_MODEL and s["agent"] == "builtin" for s in builtin.values())
    fixed = Path(st["demo-fix-bug"]["worktree"]) / "calc.py"
    assert "return sum(values) / len(values)\n" in fixed.read_text()
    assert "return sum(values) / (len(values) + 1)" in (demo_dir / "calc.py").read_text()
    log = json.loads(wb.run("log", st["demo-fix-bug"]["id"], "--json").stdout)
    runs = [e["data"]["output"] for e in log if e["kind"] == "tool_output" and "Ran 2 tests" in e["data"]["output"]]
    assert len(runs) == 2 and "FAILED (failures=1)" in runs[0] and runs[1].rstrip().endswith("OK")
    assert log[0]["kind"] == "agent" and log[0]["data"]["model"] == DEMO_MODEL
    assert st["demo-approval"]["approval_pending"]["describe"] == "cat calc.py"
    assert "503" in st["demo-error"]["reason"] and "gave up after 3 attempts" in st["demo-error"]["reason"]
    assert st["demo-error"]["tokens_in"] > 0
    assert {s["sandbox"] for s in st.values()} <= {"workspace", "off"}

    # two attempts at one task in one group: the built-in agent and a CLI in a terminal
    one, two = st["demo-attempt-1"], st["demo-attempt-2"]
    assert one["extra"]["attempt_group"] == two["extra"]["attempt_group"] and one["prompt"] == two["prompt"]
    assert "terminal_agent.py" in two["agent"]
    screen = wb.wait_screen(two["id"], "Apply this edit to calc.py? [y/n]")
    assert "task: Fix the failing test in calc.py." in screen
    cmp = json.loads(wb.run("compare", one["id"], "--json").stdout)
    assert [(s["name"], s["check"]) for s in cmp["sessions"]] == [("demo-attempt-1", "failed"),
                                                                   ("demo-attempt-2", "none")]
    # the failing check goes back to the agent, which fixes it; the CLI edits once answered
    assert "sent the failing check" in wb.run("check", one["id"], "--send").stdout
    wb.run("send", two["id"], "y")

    def fixed() -> bool:
        st = states()
        return all((st[n]["state"], st[n]["check"]) == ("review", "passed")
                   for n in ("demo-attempt-1", "demo-attempt-2"))

    wait_for(fixed, 60, what="both attempts to pass their check")
    for name in ("demo-attempt-1", "demo-attempt-2"):
        wt = Path(states()[name]["worktree"])
        assert "return sum(values) / len(values)\n" in (wt / "calc.py").read_text()
        assert not list(wt.rglob("__pycache__"))  # no build noise to review

    wb.run("approve", st["demo-approval"]["id"])
    wait_for(lambda: (states()["demo-approval"].get("approval_pending") or {}).get("kind") == "patch", 15,
             what="the demo's patch approval")
    assert config.read_text() == "# mine\n"

    wb.env["TMPDIR"] = str(tmp_path)  # where the sample repo goes without --dir
    again = wb.run("demo", "--no-ui").stdout  # a second run gets its own names and model server
    assert "demo-fix-bug-2" in again
    assert len(list(tmp_path.glob("workbench-demo-*/calc.py"))) == 1


def test_a_delta_before_the_transcript_is_mounted_is_kept() -> None:
    """The demo's sessions stream from the first moment: a delta can reach a pane whose
    transcript is not mounted yet (it raised MountError and the UI showed no sessions)."""
    import asyncio

    from textual.app import App

    from workbench.ui.widgets.transcript import Transcript

    async def run() -> str:
        app: App[None] = App()
        async with app.run_test() as pilot:
            t = Transcript()
            t.add_delta("I'll reproduce ")
            await app.mount(t)
            t.add_delta("the failure first.")
            await pilot.pause()
            return str(t.query_one(".streaming").render())

    assert asyncio.run(run()) == "I'll reproduce the failure first."


def test_without_a_sandbox_the_demo_check_still_runs(wb: Wb, tmp_path: Path) -> None:
    """No working bubblewrap: the sessions run unsandboxed, and the check of the demo's own
    `.workbench.toml` (which needs trust then) runs because the demo trusted that file."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "bwrap").write_text("#!/bin/sh\necho 'bwrap: no permission' >&2\nexit 1\n")
    (fake_bin / "bwrap").chmod(0o755)
    wb.env["PATH"] = f"{fake_bin}:{wb.env['PATH']}"
    demo_dir = tmp_path / "demo"
    p = wb.run("demo", "--no-ui", "--dir", str(demo_dir))
    assert "sandbox     off" in p.stdout and "run with sandbox OFF" in p.stderr

    def failed() -> dict[str, Any] | None:
        s = next(s for s in wb.json("ls") if s["name"] == "demo-attempt-1")
        return s if s["check"] == "failed" else None

    s = wait_for(failed, 60, what="demo-attempt-1's check to run and fail")
    assert s["sandbox"] == "off"
    trusted = json.loads((Path(wb.env["XDG_CONFIG_HOME"]) / "workbench" / "trust.json").read_text())
    assert str(demo_dir.resolve()) in json.dumps(trusted)
