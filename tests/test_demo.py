"""`workbench demo --no-ui`: the sample repo and the three scripted sessions, for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import wait_for
from tests.wb import Wb
from workbench.demo.script import DEMO_MODEL


def test_demo_runs_three_sessions_offline(wb: Wb, tmp_path: Path, isolated_env: Path) -> None:
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
        want = {"demo-fix-bug": "review", "demo-approval": "waiting", "demo-error": "error"}
        return st if all(st[n]["state"] == w for n, w in want.items()) else None

    st = wait_for(settled, 30, what="the demo sessions to settle")
    assert all(s["model"] == DEMO_MODEL and s["agent"] == "builtin" for s in st.values())
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

    wb.run("approve", st["demo-approval"]["id"])
    wait_for(lambda: (states()["demo-approval"].get("approval_pending") or {}).get("kind") == "patch", 15,
             what="the demo's patch approval")
    assert config.read_text() == "# mine\n"

    wb.env["TMPDIR"] = str(tmp_path)  # where the sample repo goes without --dir
    again = wb.run("demo", "--no-ui").stdout  # a second run gets its own names and model server
    assert "demo-fix-bug-2" in again
    assert len(list(tmp_path.glob("workbench-demo-*/calc.py"))) == 1
