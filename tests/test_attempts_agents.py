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
