"""Suggestions end to end: real repositories, the real CLI and daemon, the check and the
linters in the sandbox, a scripted `gh` on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo
from tests.helpers import wait_for
from tests.protocol_conformance import conforms, result_type
from tests.wb import Wb
from workbench.core import sandbox_probe
from workbench.daemon.client import Client
from workbench.protocol import suggest as ps

SANDBOX = sandbox_probe.probe().ok
VENV_BIN = str(Path(sys.executable).parent)
FAILING = ("def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
           "def test_ok():\n    pass\n")
FIXED = FAILING.replace("a - b", "a + b")
TYPE_ERROR = "def half(n: int) -> int:\n    n += 'x'\n    return str(n // 2)\n"  # two errors
# No plugins: the venv's (xdist, timeout, ...) cost seconds a run and are not what is tested.
CHECK = f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q -p no:cacheprovider tests"
ESLINT = shutil.which("eslint")


@pytest.fixture
def wbp(wb: Wb, isolated_env: Path) -> Wb:
    """The daemon sees the venv's tools (ruff) on PATH; without bubblewrap sessions and
    scans run unsandboxed, which the user's own config then says."""
    wb.env["PATH"] = VENV_BIN + os.pathsep + wb.env.get("PATH", "")
    if not SANDBOX:
        (isolated_env / "config" / "workbench" / "config.toml").write_text('[session]\nsandbox = "off"\n')
    return wb


def repo_config(repo: Path, text: str) -> None:
    (repo / ".workbench.toml").write_text(text)
    git(repo, "add", ".workbench.toml")
    git(repo, "commit", "-qm", "workbench config")
    if not SANDBOX:  # unsandboxed, an untrusted repo file's commands may not run
        from workbench.core import trust

        trust.trust(repo)


def suggestions(wb: Wb, repo: Path, *flags: str) -> dict[str, Any]:
    return dict(json.loads(wb.run("suggest", "--repo", str(repo), "--json", *flags, timeout=300).stdout))


def by_source(reply: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [s for s in reply["suggestions"] if s["source"] == source]


def commit_at(repo: Path, date: str, message: str) -> None:
    git(repo, "add", "-A")
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, env=env, check=True)


@pytest.mark.timeout(300)
def test_check_ruff_and_todos_start_and_dismissal_survives_a_restart(wbp: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"tests/test_math.py": FAILING, "lint_me.py": "import os\n",
                                         "pyproject.toml": "[tool.ruff]\nline-length = 100\n[tool.mypy]\n",
                                         "typed.py": TYPE_ERROR, "old.py": "x = 1  # TODO: old idea\n"})
    git(repo, "commit", "-q", "--amend", "--no-edit", "--date", "2020-01-01T00:00:00")
    (repo / "new.py").write_text("y = 2  # FIXME: new problem\n")
    commit_at(repo, "2024-06-01T00:00:00", "newer")
    # a hostile check also tries to write into the main checkout: the sandbox shows it read-only
    hostile = f"touch {repo}/pwned; " if SANDBOX else ""
    repo_config(repo, f"[check]\ncommand = {json.dumps(hostile + CHECK)}\n")
    reply = suggestions(wbp, repo)  # the first listing runs the check: no --refresh needed
    assert reply["errors"] == [] and reply["head"] == git(repo, "rev-parse", "HEAD").strip()
    assert conforms(reply, result_type(ps.SUGGEST)) is None
    (check,) = by_source(reply, "check")
    assert check["title"] == "Failing test tests/test_math.py::test_add"
    assert "assert -1 == 3" in check["evidence"] and check["locations"] == ["tests/test_math.py:6"]
    ruff, mypy = sorted(by_source(reply, "lint"), key=lambda x: x["title"], reverse=True)
    assert ruff["title"].startswith("ruff: 1 problem in lint_me.py") and "lint_me.py:1: F401" in ruff["evidence"]
    # mypy from the venv, configured by [tool.mypy]: one suggestion for the file, file:line evidence
    assert mypy["title"] == "mypy: 2 problems in typed.py (operator, return-value)"
    assert mypy["locations"] == ["typed.py:2", "typed.py:3"]
    assert 'typed.py:3: return-value Incompatible return value type (got "str", expected "int")' in mypy["evidence"]
    assert "typed.py" in mypy["prompt"]
    todos = by_source(reply, "todo")
    assert [t["locations"][0] for t in todos] == ["new.py:1", "old.py:1"]  # newest first, by blame
    assert "FIXME: new problem" in todos[0]["evidence"]
    assert reply["suggestions"][0]["source"] == "check"  # a failing test ranks first
    assert git(repo, "status", "--porcelain") == ""  # the scan wrote nothing into the repo
    assert not (repo / "pwned").exists()
    assert "Failing test tests/test_math.py::test_add" in wbp.run("suggest", "--repo", str(repo)).stdout

    started = json.loads(wbp.run("suggest", "start", check["id"], "--agent", "sleep 1000", "--json").stdout)
    assert conforms(started, result_type(ps.SUGGEST_START)) is None
    sid = started["sessions"][0]["id"]
    s = wbp.session(sid)
    assert s["extra"]["suggestion"] == check["id"] and "assert -1 == 3" in s["prompt"]
    assert s["prompt"] == check["prompt"]
    again = suggestions(wbp, repo)
    assert next(x for x in again["suggestions"] if x["id"] == check["id"])["sessions"] == [sid]
    pair = json.loads(wbp.run("suggest", "start", ruff["id"], "--attempts", "2", "--agent", "sleep 1000",
                              "--json").stdout)
    assert len(pair["sessions"]) == 2 and pair["group"]
    for info in pair["sessions"]:
        assert wbp.session(info["id"])["extra"]["suggestion"] == ruff["id"] and "F401" in info["prompt"]

    assert wbp.run("suggest", "dismiss", todos[1]["id"]).stdout.strip() == f"dismissed {todos[1]['id']}"
    bad = wbp.run("suggest", "dismiss", "nope", check=False)
    assert bad.returncode == 2 and "no suggestion 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    wbp.run("daemon", "stop")
    after = suggestions(wbp, repo)
    assert todos[1]["id"] not in [x["id"] for x in after["suggestions"]] and after["dismissed"] == 1
    assert todos[0]["id"] in [x["id"] for x in after["suggestions"]]  # ids are stable across restarts
    # the last scan is kept: the check's result (no --refresh since) and the session started on it
    assert [(x["id"], x["sessions"]) for x in by_source(after, "check")] == [(check["id"], [sid])]


@pytest.mark.timeout(180)
def test_the_check_runs_on_its_schedule(wbp: Wb, tmp_path: Path, isolated_env: Path) -> None:
    """`interval_s = 1`: the check's result follows main's commits with no `--refresh`. The
    three changes share one hang bound, which a scheduler waking only every 30 s misses."""
    user = isolated_env / "config" / "workbench" / "config.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text((user.read_text() if user.exists() else "") + "\n[suggest]\ninterval_s = 1\n")
    repo = make_repo(tmp_path / "repo", {"tests/test_math.py": FAILING})
    repo_config(repo, f'[check]\ncommand = {json.dumps(CHECK)}\n[suggest]\ntodo = false\nlint = false\ngh = false\n')
    deadline = time.monotonic() + 75

    def check_titles() -> list[str]:
        return [x["title"] for x in by_source(suggestions(wbp, repo), "check")]

    failing = ["Failing test tests/test_math.py::test_add"]
    wait_for(lambda: check_titles() == failing, deadline - time.monotonic(), interval=0.5, what="the first check")
    (repo / "tests" / "test_math.py").write_text(FIXED)
    commit_at(repo, "2024-06-01T00:00:00", "fix")
    wait_for(lambda: check_titles() == [], deadline - time.monotonic(), interval=0.5, what="the fixed check")
    (repo / "tests" / "test_math.py").write_text(FAILING)
    commit_at(repo, "2024-06-02T00:00:00", "break it again")
    wait_for(lambda: check_titles() == failing, deadline - time.monotonic(), interval=0.5,
             what="the newly failing check on main")


@pytest.mark.skipif(ESLINT is None, reason="eslint is not installed (its output's parser is tested in "
                                           "test_suggest_parse.py)")
@pytest.mark.timeout(180)
def test_eslint_where_the_repository_configures_it(wbp: Wb, tmp_path: Path) -> None:
    assert ESLINT is not None
    config = 'export default [{rules: {"no-unused-vars": "error"}}];\n'
    repo = make_repo(tmp_path / "repo", {"eslint.config.mjs": config, "app.js": "const unused = 1;\n",
                                         ".gitignore": "node_modules/\n"})
    bin_dir = repo / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "eslint").symlink_to(ESLINT)
    repo_config(repo, "[suggest]\ntodo = false\ngh = false\n")
    reply = suggestions(wbp, repo)
    (lint,) = by_source(reply, "lint")
    assert lint["title"] == "eslint: 1 problem in app.js (no-unused-vars)" and lint["locations"] == ["app.js:1"]


GH = """#!/bin/sh
case "$1 $2" in
  "auth status") exit 0 ;;
  "run list") echo '[{"databaseId": 7, "displayTitle": "fix parser", "workflowName": "tests",
    "headBranch": "main", "conclusion": "failure", "status": "completed", "url": "https://x/runs/7"},
    {"databaseId": 6, "displayTitle": "ok", "workflowName": "lint", "headBranch": "main",
    "conclusion": "success", "status": "completed", "url": "https://x/runs/6"}]' ;;
  "run view") [ "$3" = 7 ] && echo "test_parser.py::test_x FAILED: KeyError 'name'" ;;
  "issue list") echo '[{"number": 12, "title": "Crash on empty input", "body": "Steps: run with no args",
    "url": "https://x/issues/12"}]' ;;
  *) exit 1 ;;
esac
"""


@pytest.mark.timeout(180)
def test_scripted_gh_and_a_log_file(wbp: Wb, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH)
    (bin_dir / "gh").chmod(0o755)
    wbp.env["PATH"] = str(bin_dir) + os.pathsep + wbp.env["PATH"]
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n"})
    git(repo, "remote", "add", "origin", "https://github.com/acme/demo.git")
    (repo / "app.log").write_text("INFO up\nTraceback (most recent call last):\n  File \"srv.py\", line 9, in h\n"
                                  "KeyError: 'user'\nERROR cache miss storm\n")
    repo_config(repo, '[suggest]\ntodo = false\nlint = false\nlog_file = "app.log"\n')
    reply = suggestions(wbp, repo)
    assert reply["errors"] == []
    (ci,) = by_source(reply, "ci")
    assert ci["title"] == "CI failing: tests on main" and "KeyError 'name'" in ci["evidence"]
    assert "https://x/runs/7" in ci["prompt"]
    (issue,) = by_source(reply, "issue")
    assert issue["title"] == "Issue #12: Crash on empty input" and "Steps: run with no args" in issue["prompt"]
    logs = by_source(reply, "log")
    assert [x["title"].split(": ", 1)[1] for x in logs] == ["KeyError: 'user'", "ERROR cache miss storm"]
    # a repository's own setting may not read a file outside it
    repo_config(repo, '[suggest]\ntodo = false\nlint = false\ngh = false\nlog_file = "/etc/passwd"\n')
    outside = suggestions(wbp, repo)
    assert outside["suggestions"] == [] and any("outside" in e for e in outside["errors"])


def test_a_log_command_runs_in_the_sandbox_and_its_errors_are_suggestions(wbp: Wb, tmp_path: Path) -> None:
    """`[suggest] log_command`: a command whose output is read as a log is (tracebacks and
    error lines), run as the check is: in the sandbox, never writing the repository."""
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n"})
    hostile = f"touch {repo}/pwned; " if SANDBOX else ""
    command = (hostile + "printf 'INFO start\\nTraceback (most recent call last):\\n  File \"job.py\", line 3, "
               "in run\\nValueError: bad row 7\\nFATAL: queue full\\n'")
    repo_config(repo, f"[suggest]\ntodo = false\nlint = false\ngh = false\nlog_command = {json.dumps(command)}\n")
    reply = suggestions(wbp, repo)
    assert reply["errors"] == []
    logs = by_source(reply, "log")
    titles = sorted(x["title"] for x in logs)
    # the error on the title's one line (the command named short), the traceback as evidence
    assert titles[0].startswith("Error in the output of `") and titles[0].endswith("…`: FATAL: queue full"), titles
    assert titles[1].startswith("Traceback in the output of `") and titles[1].endswith(": ValueError: bad row 7")
    assert len(titles[1]) < 120
    assert any('File "job.py", line 3' in x["evidence"] for x in logs)
    assert git(repo, "status", "--porcelain") == "" and not (repo / "pwned").exists()


@pytest.mark.timeout(300)
def test_thousands_of_todos_give_a_capped_list_and_the_daemon_stays_responsive(wbp: Wb, tmp_path: Path) -> None:
    files = {f"pkg/m{i:03}.py": "".join(f"x{j} = {j}  # TODO: item {i}.{j}\n" for j in range(25)) for i in range(200)}
    repo = make_repo(tmp_path / "repo", files)
    repo_config(repo, "[suggest]\nmax_items = 40\ngh = false\nlint = false\n")
    wbp.run("daemon", "start")
    with Client("test", timeout=120) as c:
        first = c.call("suggest", repo=str(repo), wait=False)
        assert first["scanning"] is True  # the reply did not wait for the scan
        assert c.call("ls") == []  # the daemon answers while the scan runs in its threads
    reply = suggestions(wbp, repo)
    todos = by_source(reply, "todo")
    assert len(todos) == 40 and reply["scanning"] is False
    assert all(t["title"].startswith("25 TODOs in pkg/m") for t in todos)
    assert "... and 13 more in this file" in todos[0]["evidence"]
