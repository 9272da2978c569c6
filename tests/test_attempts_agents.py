"""Attempts across agents: `new --agent a,b` (or repeated `--agent`) starts one attempt per
agent in one group; bad agent lists are one-line errors. A real daemon over its socket."""

from __future__ import annotations

import json
from pathlib import Path

from tests.wb import Wb


def test_attempts_span_the_agents_given(wb: Wb, repo: Path) -> None:
    out = wb.run("new", "--repo", str(repo), "--agent", "cat,tail", "--prompt", "read stdin",
                 "--sandbox", "off", "--json").stdout
    res = json.loads(out)
    assert [s["agent"] for s in res["sessions"]] == ["cat", "tail"]  # one attempt each, no --attempts
    assert {s["extra"]["attempt_group"] for s in res["sessions"]} == {res["group"]}
    # repeated --agent, a command line kept whole, and more attempts than agents: in turn
    res = json.loads(wb.run("new", "--repo", str(repo), "--agent", "cat", "--agent", "sleep 1000",
                            "--attempts", "3", "--name", "mix", "--sandbox", "off", "--json").stdout)
    assert [(s["name"], s["agent"]) for s in res["sessions"]] == [
        ("mix-1", "cat"), ("mix-2", "sleep 1000"), ("mix-3", "cat")]
    assert [s["extra"]["attempt"] for s in res["sessions"]] == [1, 2, 3]


def test_bad_agent_lists_are_one_line_errors(wb: Wb, repo: Path) -> None:
    for args, message in [
        (["--agent", "cat,tail", "--attempts", "1"], "error: 2 agents for 1 attempts"),
        (["--agent", "cat,", "--attempts", "2"], "error: agents: '' is not an agent name"),
    ]:
        p = wb.run("new", "--repo", str(repo), "--sandbox", "off", *args, check=False)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith(message) and "Traceback" not in p.stderr, p.stderr
    assert wb.json("ls") == []  # all or none


def test_the_new_session_dialogs_attempts() -> None:
    from workbench.ui.screens.new_session import NewSessionForm

    across = NewSessionForm(repo="/r", agent="builtin", also=["shell"], attempts=3)
    ap = across.attempts_params(across.params())
    assert ap is not None and (ap["attempts"], ap["agents"], "agent" in ap) == (3, ["builtin", "shell"], False)
    same = NewSessionForm(repo="/r", agent="codex", attempts=2)
    ap = same.attempts_params(same.params())
    assert ap is not None and (ap["attempts"], ap.get("agents"), ap["agent"]) == (2, None, "codex")
    one = NewSessionForm(repo="/r", agent="codex", also=["codex"])  # the Agent field's own: no second
    assert one.attempts_params(one.params()) is None


def test_new_attempts_refuses_bad_agents_on_the_socket(wb: Wb, repo: Path) -> None:
    import pytest

    from workbench.daemon.client import Client

    base = {"repo": str(repo), "sandbox": "off", "attempts": 2, "prompt": "p"}
    with Client("test") as c:
        for bad, message in [(["cat", "a\nb"], "is not an agent name"), (["\x1b[2J"], "is not an agent name"),
                             (["cat", "\x00"], "agents"), ("cat", "agents"), ([1], "agents"),
                             (["a", "b", "c"], "3 agents for 2 attempts")]:
            with pytest.raises(Exception, match=message):
                c.call("new_attempts", **base, agents=bad)
    assert wb.json("ls") == []
