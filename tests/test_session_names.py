"""Sessions started with a prompt are named from it (short, unique) and can be renamed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wb import Wb
from workbench.core import worktree as wt
from workbench.core.session_names import MAX_CHARS, name_from_prompt, unique

OFF = ("--sandbox", "off")


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("Fix the flaky login test in the auth module", "fix flaky login test"),
        ("please add a --json flag to ls", "add json flag ls"),
        ("\n\n  Refactor db.py: split the queries\nmore detail", "refactor db.py split queries"),
        ("Ünïcode façade", "unicode facade"),
        ("a the of", "a the of"),  # only filler words: keep them rather than nothing
        ("...!!!", ""),
        ("", ""),
    ],
)
def test_name_from_prompt(prompt: str, name: str) -> None:
    assert name_from_prompt(prompt) == name


def test_names_from_prompts_are_short_valid_session_names() -> None:
    for prompt in ("x" * 500, "word " * 40, "..a..b..", "-leading dash", "_under_score"):
        name = name_from_prompt(prompt)
        assert len(name) <= MAX_CHARS
        if name:
            assert wt.validate_name(name) == name


def test_unique_appends_the_first_free_number() -> None:
    taken = {"fix login", "fix login 2"}
    assert unique("fix login", taken.__contains__) == "fix login 3"
    assert unique("other", taken.__contains__) == "other"


def test_sessions_are_named_from_their_prompt_and_renamed(wb: Wb, repo: Path) -> None:
    a = wb.new(repo, "--prompt", "Fix the flaky login test", *OFF)
    b = wb.new(repo, "--prompt", "Fix the flaky login test", *OFF)
    c = wb.new(repo, *OFF)  # no prompt: named after the agent, as before
    names = {s["id"]: s["name"] for s in wb.json("ls")}
    assert names[a] == "fix flaky login test"
    assert names[b] == "fix flaky login test 2"
    assert names[c] == "shell-1"
    assert wb.session(a)["branch"] == "wb/fix-flaky-login-test"

    out = wb.run("rename", a, "login", "retry").stdout
    assert out.split() == [a, "login", "retry"]
    assert wb.session(a)["name"] == "login retry"
    assert wb.session(a)["branch"] == "wb/fix-flaky-login-test"  # the branch keeps its name
    # Taken and invalid names are refused with one line, nothing changes.
    taken = wb.run("rename", b, "login retry", check=False)
    assert taken.returncode != 0 and "already exists" in taken.stderr
    assert "Traceback" not in taken.stderr
    bad = wb.run("rename", b, "../x", check=False)
    assert bad.returncode != 0 and "invalid session name" in bad.stderr
    assert wb.session(b)["name"] == "fix flaky login test 2"
    # A renamed session is found by its new name.
    assert wb.run("screen", "login retry").returncode == 0


def test_attempts_are_named_from_the_prompt(wb: Wb, repo: Path) -> None:
    out = wb.run("new", "--repo", str(repo), "--prompt", "Speed up the parser", "--attempts", "2", *OFF,
                 "--json").stdout
    assert '"speed up parser-1"' in out and '"speed up parser-2"' in out
