"""Validated before reviewed (daemon/check_fix_rounds.py): a real daemon, real repositories,
the built-in agent against the fake model server; the repo's check is its unit tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import FIX, TEST_CALC, Factory, calls, patch
from tests.conftest import make_repo
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.daemon.client import Client
from workbench.fakes.model_server import FakeOpenAI, Script, Turn

OFF = ("--sandbox", "off")
ADD_BUG = """*** Begin Patch
*** Add File: calc.py
+def mean(values):
+    return sum(values) / (len(values) + 1)
*** End Patch
"""
FAILURE = "3.0 != 4"  # what the unit test prints for the bug


def call(method: str, **params: Any) -> Any:
    with Client("test") as c:
        return c.call(method, **params)


def configure(isolated_env: Path, fake: FakeOpenAI) -> None:
    """The fake model for the built-in agent, and the check every repository here runs."""
    check = json.dumps([sys.executable, "-m", "unittest", "-q"])
    (isolated_env / "config" / "workbench" / "config.toml").write_text(
        f'[session]\nprovider = "fake"\n\n[providers.fake]\nbase_url = "{fake.base_url}"\nmodel = "fake-model"\n\n'
        f"[check]\ncommand = {check}\ntimeout_s = 60\n"
    )


def start(wb: Wb, repo: Path, prompt: str) -> str:
    return wb.new(repo, "--agent", "builtin", "--prompt", prompt, "--approval", "full-auto", *OFF)


def wait_review(sid: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := call("get", id=sid))["state"] == "review" and s, 90,
                         what=f"review of {sid}"))


def users(sid: str) -> list[str]:
    return [e["data"]["text"] for e in call("log", id=sid) if e["kind"] == "user"]


def state_reasons(sid: str) -> list[str]:
    return [e["data"]["reason"] for e in call("events", id=sid) if e["kind"] == "state"]


def requests_of(fake: FakeOpenAI, script: str) -> list[Any]:
    return [r for r in fake.requests if r.script == script]


def fixed_within_the_rounds(wb: Wb, fake: FakeOpenAI, sid: str) -> None:
    """The agent wrote a bug, was sent the failure, fixed it: review, green, no one typed."""
    s = wait_review(sid)
    assert s["check"] == "passed" and s["reason"] == "check passed after 1 fix round"
    task, failure = users(sid)  # the only message besides the task was the failure
    assert task == "FIXED add mean()"
    round1 = requests_of(fake, "FIXED")[2].body["messages"][-1]
    assert round1["role"] == "user" and round1["content"] == failure
    assert FAILURE in failure and "automatic fix round 1 of 2" in failure
    assert len(requests_of(fake, "FIXED")) == 4
    # Never `review` on the way: running the check, fixing, checking again, then review.
    reasons = state_reasons(sid)
    assert reasons[-4:] == ["running the check", "check failed, fixing (1/2)", "running the check (1/2 fix rounds)",
                            "check passed after 1 fix round"]
    assert [e["data"]["to"] for e in call("events", id=sid) if e["kind"] == "state"].count("review") == 1

    # The check result beside the diff is the latest check of this very diff.
    d = json.loads(wb.run("diff", sid, "--json").stdout)
    assert d["check"]["status"] == "passed" and d["check"]["digest"] == d["digest"]
    assert "check passed" in wb.run("diff", sid, "--stat").stdout
    assert "len(values)\n" in (Path(s["worktree"]) / "calc.py").read_text()


def test_fix_rounds_end_to_end(wb: Wb, tmp_path: Path, fake_factory: Factory, isolated_env: Path) -> None:
    """One daemon for the whole contract: fixed within the rounds, never fixed, rounds off,
    stopped while fixing, the person taking over, an ACP agent and a terminal agent."""
    files = {"test_calc.py": TEST_CALC}
    fixed = make_repo(tmp_path / "fixed", files)
    never = make_repo(tmp_path / "never", files)
    zero = make_repo(tmp_path / "zero", files)
    (zero / ".workbench.toml").write_text("[check]\nfix_rounds = 0\n")  # a repo may lower it
    takeover = make_repo(tmp_path / "takeover", files)
    acp_repo = make_repo(tmp_path / "acp", files)
    (acp_repo / ".workbench.toml").write_text("[check]\nfix_rounds = 1\n")
    (tmp_path / "acp-state").mkdir()
    wb.env["ACP_FAKE_STATE"] = str(tmp_path / "acp-state")
    fake = fake_factory([
        Script("FIXED", [
            calls(patch(ADD_BUG)), Turn(text="Added mean()."),  # the turn ends with a bug
            calls(patch(FIX)), Turn(text="Fixed the division."),  # the answer to the failure
        ]),
        Script("NEVER", [calls(patch(ADD_BUG)), Turn(text="done"), Turn(text="tried"), Turn(text="tried again"),
                         Turn(text="NOT ASKED")]),
        Script("ZERO", [calls(patch(ADD_BUG)), Turn(text="done"), Turn(text="NOT ASKED")]),
        # The fix round's answer is held until the person has written.
        Script("TAKEOVER", [calls(patch(ADD_BUG)), Turn(text="done"), Turn(text="looking", delay_s=120),
                            Turn(text="leaving it to you"), Turn(text="NOT ASKED")]),
        Script("STOPPED", [calls(patch(ADD_BUG)), Turn(text="done"), Turn(text="looking", delay_s=120),
                           Turn(text="NOT ASKED")]),
    ])
    configure(isolated_env, fake)
    ids = {name: start(wb, repo, f"{name} add mean()") for name, repo in
           (("FIXED", fixed), ("NEVER", never), ("ZERO", zero), ("TAKEOVER", takeover),
            ("STOPPED", make_repo(tmp_path / "stopped", files)))}
    # An ACP agent (tests/fake_agents/acp_agent.py) writes a broken calc.py and, sent the
    # failure, only echoes it: one round (this repo's fix_rounds), then review, red.
    agent = "acp:" + " ".join([sys.executable, str(Path(__file__).parent / "fake_agents" / "acp_agent.py")])
    ids["ACP"] = wb.new(acp_repo, "--agent", agent, "--prompt", "put calc.py x", *OFF)
    # A terminal agent: workbench only guesses its turn ends, so nothing is typed into it.
    ids["PTY"] = wb.new(make_repo(tmp_path / "pty", files), "--agent", "sleep 1000", *OFF)

    fixed_within_the_rounds(wb, fake, ids["FIXED"])

    # Stopped while the agent fixes: the rounds end with it.
    sid = ids["STOPPED"]
    wait_for(lambda: call("get", id=sid).get("check_fix") == "1/2" and len(requests_of(fake, "STOPPED")) == 3,
             90, what="the fix round of the session to stop")
    wb.run("stop", sid)
    s = call("get", id=sid)
    assert s["state"] == "stopped" and "check_fix" not in s

    # The person writes while the agent fixes: the rounds stop, the answer goes to review.
    sid = ids["TAKEOVER"]
    s = wait_for(lambda: (x := call("get", id=sid)).get("check_fix") == "1/2" and len(
        requests_of(fake, "TAKEOVER")) == 3 and x, 90, what="the first fix round")
    assert s["state"] == "running" and s["reason"] == "check failed, fixing (1/2)"
    row = next(line for line in wb.run("ls").stdout.splitlines() if line.startswith(sid))
    assert "fix 1/2" in row
    wb.run("send", sid, "stop, I will fix it myself")
    fake.release()
    s = wait_review(sid)
    assert "check_fix" not in s and "fix" not in s["reason"]
    assert len(requests_of(fake, "TAKEOVER")) == 4
    assert users(sid)[2:] == ["stop, I will fix it myself"]

    # A check that never passes: fix_rounds (2) failures sent, then review, red, saying why.
    s = wait_review(ids["NEVER"])
    assert s["check"] == "failed" and s["reason"] == "check failed after 2 fix rounds"
    sent = users(ids["NEVER"])[1:]
    assert len(sent) == 2 and all(FAILURE in m for m in sent)
    assert len(requests_of(fake, "NEVER")) == 4

    # fix_rounds = 0: straight to review; the check still runs there.
    s = wait_review(ids["ZERO"])
    assert "running the check" not in state_reasons(ids["ZERO"])
    wait_for(lambda: call("get", id=ids["ZERO"])["check"] == "failed", 60, what="the check in review")
    assert users(ids["ZERO"]) == ["ZERO add mean()"] and len(requests_of(fake, "ZERO")) == 2

    s = wait_review(ids["ACP"])
    assert s["check"] == "failed" and s["reason"] == "check failed after 1 fix round"
    task, failure = users(ids["ACP"])
    assert task == "put calc.py x"
    assert "name 'x' is not defined" in failure and "automatic fix round 1 of 1" in failure
    assert fake.violations == []

    sid = ids["PTY"]
    (Path(wb.wait_state(sid, "running", 30)["worktree"]) / "calc.py").write_text("x\n")
    wb.run("notify", sid, "done")
    wait_review(sid)
    wait_for(lambda: call("get", id=sid)["check"] == "failed", 60, what="the check of the terminal session")
    assert "running the check" not in state_reasons(sid)
    assert not [e for e in call("events", id=sid) if e["kind"] == "check_sent"]


def test_the_check_beside_the_diff_says_which_diff_it_ran_on_and_the_round() -> None:
    from workbench.cli_render import check_cell, check_line
    from workbench.ui.model import check_label
    from workbench.ui.widgets.check_panel import check_summary

    chk = {"status": "failed", "exit_code": 1, "command": "pytest -q", "tail": "E boom", "reason": "",
           "duration_s": 1.0, "finished_at": 0.0, "digest": "aaa"}
    assert check_line(chk, "aaa") == "check failed (exit 1): pytest -q"
    assert check_line(chk, "bbb").endswith("[ran on an earlier version of this diff]")
    fixing: Any = {"check": "failed", "check_fix": "1/2"}
    plain: Any = {"check": "failed"}
    assert check_cell(fixing) == "fix 1/2" and check_cell(plain) == "failed"
    status, head, tail = check_summary(fixing, chk, "bbb")
    assert status == "failed" and tail == "E boom"
    assert "ran on an earlier version of this diff" in head and "fixing (1/2)" in head
    assert check_summary(plain, chk, "aaa")[1] == "check failed (pytest -q, exit 1, 1.0s)"
    assert check_label(fixing) == ("✖ fixing 1/2", "$warning") and check_label(plain) == ("✖ check", "bold $error")


def test_fix_rounds_default_two_a_repo_may_lower_or_raise_them_up_to_five(tmp_path: Path) -> None:
    from workbench import config
    from workbench.core import trust
    from workbench.errors import ConfigError

    assert config.Config().check.fix_rounds == 2
    user = tmp_path / "user.toml"
    user.write_text("[check]\nfix_rounds = 1\n")
    repo = tmp_path / "r"
    repo.mkdir()
    for n in (0, 5):  # only model turns are at stake: no trust needed either way
        (repo / ".workbench.toml").write_text(f"[check]\nfix_rounds = {n}\n")
        assert config.load(repo, path=user).check.fix_rounds == n
    assert not trust.load_records()
    (repo / ".workbench.toml").write_text("[check]\nfix_rounds = 6\n")
    with pytest.raises(ConfigError, match="fix_rounds") as e:
        config.load(repo, path=user)
    assert str(e.value).endswith(":2: key 'check.fix_rounds': Input should be less than or equal to 5")
