"""Tool specs, call validation, read-only classification and execution with real processes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import git
from tests.helpers import wait_for
from workbench.agent.command_run import CommandResult, LocalRunner
from workbench.agent.tools import (
    TOOL_SPECS,
    ParsedCall,
    ToolCall,
    ToolOutcome,
    chat_tool_schemas,
    execute,
    is_known_read_only,
    parse_call,
    responses_tool_schemas,
)
from workbench.agent.truncate import truncate_output

PATCH = "*** Begin Patch\n*** Add File: notes/new.txt\n+hello\n*** End Patch"


def call(name: str, args: Any, call_id: str = "c1") -> ParsedCall:
    raw = args if isinstance(args, str) else json.dumps(args)
    return parse_call(ToolCall(call_id, name, raw))


def run(parsed: ParsedCall, root: Path, **kw: Any) -> ToolOutcome:
    opts: dict[str, Any] = {
        "root": root,
        "runner": LocalRunner(),
        "max_output_bytes": 16_000,
        "default_timeout_ms": 10_000,
    }
    opts.update(kw)
    return asyncio.run(execute(parsed, **opts))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# --------------------------------------------------------------------------- specs


def test_specs_and_wire_shapes() -> None:
    assert [s.name for s in TOOL_SPECS] == ["shell", "apply_patch", "update_plan"]
    shell = TOOL_SPECS[0].parameters
    assert shell["required"] == ["command"]
    assert shell["properties"]["command"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": shell["properties"]["command"]["description"],
    }
    assert shell["properties"]["timeout_ms"]["type"] == "integer"
    plan_item = TOOL_SPECS[2].parameters["properties"]["plan"]["items"]
    assert plan_item["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]

    chat = chat_tool_schemas()
    assert [t["function"]["name"] for t in chat] == ["shell", "apply_patch", "update_plan"]
    assert all(t["type"] == "function" and "parameters" in t["function"] for t in chat)
    resp = responses_tool_schemas()
    assert [(t["type"], t["name"]) for t in resp] == [
        ("function", "shell"),
        ("function", "apply_patch"),
        ("function", "update_plan"),
    ]
    assert resp[1]["parameters"]["required"] == ["input"]
    json.dumps(chat + resp)  # must be plain JSON for the wire
    assert "*** Begin Patch" in resp[1]["description"]


# --------------------------------------------------------------------------- parse_call


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("rm_rf", {}, "unknown tool 'rm_rf'; available tools: shell, apply_patch, update_plan"),
        ("shell", "{not json", "not valid JSON"),
        ("shell", "[1, 2]", "must be a JSON object"),
        ("shell", {}, "`command` is required"),
        ("shell", {"command": [1, 2]}, "array of strings"),
        ("shell", {"command": []}, "`command` is empty"),
        ("shell", {"command": "echo 'unterminated"}, "could not be split"),
        ("shell", {"command": ["ls"], "timeout_ms": "soon"}, "integer"),
        ("shell", {"command": ["ls"], "timeout_ms": -5}, "positive"),
        ("shell", {"command": ["ls"], "timeout_ms": True}, "integer"),
        ("shell", {"command": ["ls"], "timeout_ms": 1e400}, "positive"),
        ("shell", {"command": ["ls"], "workdir": 3}, "`workdir` must be a string"),
        ("shell", {"command": ["apply_patch"]}, "needs the patch"),
        ("apply_patch", {}, "`input`"),
        ("apply_patch", {"input": "just some text"}, "invalid patch"),
        ("update_plan", {"plan": "do it"}, "`plan` is required"),
        ("update_plan", {"plan": [{"step": "a", "status": "done"}]}, "plan[0].status"),
        ("update_plan", {"plan": [{"status": "pending"}]}, "string `step`"),
        ("update_plan", {"plan": [], "explanation": 5}, "`explanation`"),
    ],
)
def test_invalid_calls_name_the_problem(name: str, args: Any, needle: str) -> None:
    parsed = call(name, args)
    assert parsed.kind == "invalid"
    assert parsed.error is not None and needle in parsed.error
    if name in ("shell", "apply_patch", "update_plan") and "patch" not in needle:
        assert "Expected arguments for" in parsed.error or "invalid patch" in parsed.error
    assert parsed.describe().startswith(f"invalid call to {name}")


def test_invalid_call_becomes_error_outcome(repo: Path) -> None:
    outcome = run(call("shell", "{oops"), repo)
    assert outcome.is_error and "not valid JSON" in outcome.output
    assert outcome.changed_files == [] and outcome.plan is None


def test_shell_normalisation() -> None:
    p = call("shell", {"command": ["ls", "-la"], "workdir": "src", "timeout_ms": 2500.0})
    assert (p.kind, p.argv, p.workdir, p.timeout_ms) == ("shell", ["ls", "-la"], "src", 2500)
    assert p.args == {"command": ["ls", "-la"], "workdir": "src", "timeout_ms": 2500}
    assert p.describe() == "ls -la    (in src)"
    assert call("shell", {"command": "git log -n 3"}).argv == ["git", "log", "-n", "3"]
    piped = call("shell", {"command": "ls | wc -l"})
    assert piped.argv == ["bash", "-lc", "ls | wc -l"]
    assert piped.describe() == "bash -lc 'ls | wc -l'"
    assert call("container.exec", {"command": ["pwd"]}).kind == "shell"
    assert call("shell", {"command": ["sleep", "1"], "timeout": 50}).timeout_ms == 50
    # Extra keys some models send are ignored rather than rejected.
    extra = call("shell", {"command": ["ls"], "with_escalated_permissions": False})
    assert extra.kind == "shell"


@pytest.mark.parametrize(
    "argv",
    [
        ["apply_patch", PATCH],
        ["applypatch", PATCH],
        ["bash", "-lc", f"apply_patch <<'EOF'\n{PATCH}\nEOF\n"],
    ],
)
def test_shell_apply_patch_becomes_apply_patch(argv: list[str]) -> None:
    p = call("shell", {"command": argv})
    assert p.kind == "apply_patch"
    assert p.patch is not None and p.patch.strip() == PATCH
    assert p.describe() == "apply_patch\nA notes/new.txt"


def test_shell_heredoc_with_cd_keeps_directory() -> None:
    p = call("shell", {"command": ["bash", "-lc", f"cd pkg && apply_patch <<'EOF'\n{PATCH}\nEOF"]})
    assert p.kind == "apply_patch" and p.workdir == "pkg"


def test_apply_patch_freeform_and_plan_normalisation() -> None:
    raw = parse_call(ToolCall("c", "apply_patch", PATCH))  # not JSON: the patch itself
    assert raw.kind == "apply_patch" and raw.patch == PATCH
    plan = call(
        "update_plan",
        {
            "explanation": "why",
            "plan": [
                {"step": "read", "status": "completed"},
                {"step": "edit", "status": "In Progress"},
                {"step": "test", "status": "pending"},
            ],
        },
    )
    assert plan.kind == "update_plan"
    assert plan.plan == [
        {"step": "read", "status": "completed"},
        {"step": "edit", "status": "in_progress"},
        {"step": "test", "status": "pending"},
    ]
    assert plan.describe() == "update_plan: 3 steps, 1 completed"
    outcome = run(plan, Path("."))
    assert not outcome.is_error and outcome.plan == plan.plan


# --------------------------------------------------------------------------- execution


HEADER = re.compile(r"^Exit code: (-?\d+)\nWall time: \d+\.\d s\nOutput:\n", re.S)


def test_real_commands_in_git_repo(repo: Path) -> None:
    (repo / "README.md").write_text("# changed\n")
    out = run(call("shell", {"command": ["git", "status", "--porcelain"]}), repo)
    m = HEADER.match(out.output)
    assert m and m.group(1) == "0" and not out.is_error
    assert " M README.md" in out.output

    out = run(call("shell", {"command": ["pwd"], "workdir": "src"}), repo)
    assert out.output.rstrip().endswith(str((repo / "src").resolve()))

    out = run(call("shell", {"command": "ls src/*.py && echo err >&2"}), repo)
    assert "src/app.py" in out.output and "err" in out.output  # stderr merged, via bash


def test_nonzero_exit_missing_command_and_stdin(repo: Path) -> None:
    out = run(call("shell", {"command": ["ls", "no-such-file"]}), repo)
    assert out.is_error and HEADER.match(out.output).group(1) == "2"  # type: ignore[union-attr]
    assert "no-such-file" in out.output
    out = run(call("shell", {"command": ["definitely-not-a-program-xyz"]}), repo)
    assert out.is_error and "Exit code: 127" in out.output and "command not found" in out.output
    out = run(call("shell", {"command": ["cat"]}), repo)  # would hang if stdin were a tty/pipe
    assert "Exit code: 0" in out.output


@pytest.mark.parametrize("workdir", ["..", "/tmp", "src/../../", "missing-dir"])
def test_workdir_must_be_inside_root(repo: Path, workdir: str) -> None:
    out = run(call("shell", {"command": ["touch", "escaped"], "workdir": workdir}), repo)
    assert out.is_error
    assert ("outside the workspace" in out.output) or ("does not exist" in out.output)
    assert not (repo.parent / "escaped").exists()


def test_workdir_symlink_escape_is_rejected(repo: Path, tmp_path: Path) -> None:
    (repo / "link").symlink_to(tmp_path)
    out = run(call("shell", {"command": ["pwd"], "workdir": "link"}), repo)
    assert out.is_error and "outside the workspace" in out.output


def test_timeout_with_real_sleep_keeps_partial_output(repo: Path) -> None:
    out = run(
        call("shell", {"command": ["bash", "-c", "echo started; sleep 20"], "timeout_ms": 400}),
        repo,
    )
    assert out.is_error
    assert out.output.startswith("Command timed out after 400 ms\n")
    assert "started" in out.output


def test_timeout_kills_the_whole_process_group(repo: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"sleep 30 & echo $! > {pidfile}; wait"
    out = run(call("shell", {"command": ["bash", "-c", script], "timeout_ms": 300}), repo)
    assert "timed out" in out.output
    pid = int(pidfile.read_text())
    wait_for(lambda: not alive(pid), timeout=5, what="background sleep to die")


def test_background_child_does_not_hold_the_call_open(repo: Path) -> None:
    # A call that waited for the 600 s child would trip pytest-timeout (no wall-clock assert).
    out = run(call("shell", {"command": ["bash", "-c", "sleep 600 & echo $!"]}), repo)
    assert not out.is_error
    pid = int(out.output.split("Output:\n", 1)[1].strip())
    wait_for(lambda: not alive(pid), timeout=5, what="leftover child to be killed")


def test_default_timeout_applies(repo: Path) -> None:
    out = run(call("shell", {"command": ["sleep", "10"]}), repo, default_timeout_ms=200)
    assert out.is_error and "timed out after 200 ms" in out.output


def test_long_output_is_truncated_for_the_model(repo: Path) -> None:
    script = "for i in $(seq 1 20000); do echo line $i; done"
    out = run(call("shell", {"command": ["bash", "-c", script]}), repo, max_output_bytes=2000)
    assert len(out.output.encode()) <= 2000
    assert "line 1\n" in out.output and "line 20000" in out.output
    assert re.search(r"\[\.\.\. \d+ bytes / \d+ lines omitted \.\.\.\]", out.output)
    assert not out.is_error


def test_runner_capture_limit_keeps_head_and_tail(tmp_path: Path) -> None:
    runner = LocalRunner(max_capture_bytes=1000)
    script = "head -c 100000 /dev/zero | tr '\\0' x; echo; echo END"
    res = asyncio.run(runner.run(["bash", "-c", script], tmp_path, 10_000))
    assert isinstance(res, CommandResult)
    assert res.exit_code == 0 and not res.timed_out
    assert res.output.startswith("x" * 400) and res.output.endswith("END\n")
    assert "bytes not captured" in res.output and len(res.output) < 1200


def test_apply_patch_success_and_failure(repo: Path) -> None:
    patch = (
        "*** Begin Patch\n*** Update File: src/app.py\n@@\n-print('hi')\n+print('bye')\n"
        "*** Add File: docs/new.md\n+# new\n*** Delete File: README.md\n*** End Patch"
    )
    out = run(call("apply_patch", {"input": patch}), repo)
    assert not out.is_error
    assert (
        out.output
        == "Success. Updated the following files:\nA docs/new.md\nM src/app.py\nD README.md"
    )
    assert sorted(out.changed_files) == ["README.md", "docs/new.md", "src/app.py"]
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert " D README.md" in status and " M src/app.py" in status and "?? docs/new.md" in status

    bad = "*** Begin Patch\n*** Update File: src/app.py\n@@\n-print('nope')\n+x\n*** End Patch"
    out = run(call("apply_patch", {"input": bad}), repo)
    assert out.is_error and "apply_patch failed" in out.output
    assert "print('nope')" in out.output and "print('bye')" in out.output
    assert (repo / "src/app.py").read_text() == "print('bye')\n"


def test_apply_patch_through_shell_heredoc_with_cd(repo: Path) -> None:
    script = f"cd src && apply_patch <<'EOF'\n{PATCH}\nEOF"
    out = run(call("shell", {"command": ["bash", "-lc", script]}), repo)
    assert not out.is_error, out.output
    assert (repo / "src/notes/new.txt").read_text() == "hello\n"
    assert out.changed_files == ["src/notes/new.txt"]


def test_apply_patch_path_escape_is_an_error_outcome(repo: Path) -> None:
    patch = "*** Begin Patch\n*** Add File: ../evil.txt\n+x\n*** End Patch"
    out = run(call("shell", {"command": ["apply_patch", patch]}), repo)
    assert out.is_error and "'..'" in out.output
    assert not (repo.parent / "evil.txt").exists()


# --------------------------------------------------------------------------- read-only


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "-la"],
        ["cat", "README.md"],
        ["head", "-n", "5", "x"],
        ["tail", "x"],
        ["wc", "-l", "x"],
        ["grep", "-rn", "TODO", "."],
        ["rg", "-n", "foo"],
        ["find", ".", "-name", "*.py"],
        ["git", "status"],
        ["git", "log", "--oneline", "-n", "5"],
        ["git", "diff", "HEAD~1"],
        ["git", "show", "HEAD"],
        ["git", "branch"],
        ["git", "branch", "-a", "-v"],
        ["git", "--no-pager", "diff"],
        ["pwd"],
        ["echo", "hi"],
        ["sed", "-n", "1,20p", "file.py"],
        ["tree"],
        ["file", "x"],
        ["stat", "x"],
        ["which", "python"],
        ["/bin/ls"],
        ["bash", "-lc", "ls -la"],
        ["bash", "-lc", "cd src && grep -n foo *.py | head -n 20"],
        ["bash", "-lc", "git status && git diff | wc -l"],
    ],
)
def test_read_only_positives(argv: list[str]) -> None:
    assert is_known_read_only(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["find", ".", "-delete"],
        ["find", ".", "-exec", "rm", "{}", ";"],
        ["find", ".", "-fprint", "out"],
        ["sed", "-i", "s/a/b/", "x"],
        ["sed", "-n", "-i", "1p", "x"],
        ["sed", "-n", "w out", "x"],
        ["sed", "s/a/b/", "x"],
        ["git", "branch", "-D", "main"],
        ["git", "branch", "newbranch"],
        ["git", "branch", "-m", "a", "b"],
        ["git", "commit", "-m", "x"],
        ["git", "diff", "--output=patch.txt"],
        ["git", "-c", "core.pager=sh", "log"],
        ["cat", "x", ">", "y"],
        ["bash", "-lc", "cat x > y"],
        ["bash", "-lc", "cat x >> y"],
        ["bash", "-lc", "ls; rm -rf ."],
        ["bash", "-lc", "ls\nrm -rf ."],
        ["bash", "-lc", "echo $(rm -rf .)"],
        ["bash", "-lc", "echo `touch x`"],
        ["bash", "-lc", "ls & rm x"],
        ["bash", "-lc", "ls | xargs rm"],
        ["bash", "-lc", "ls # && rm x"],
        ["bash", "-lc", "FOO=1 ls"],
        ["bash", "-lc", "sort -o out in"],
        ["bash", "-c"],
        ["sort", "-uo", "out", "in"],
        ["tree", "-o", "out"],
        ["rg", "--pre", "sh", "x"],
        ["rm", "-rf", "/"],
        ["python", "-c", "print(1)"],
        ["./ls"],
        ["/tmp/ls"],
        ["touch", "x"],
        [],
    ],
)
def test_read_only_negatives(argv: list[str]) -> None:
    assert not is_known_read_only(argv)


# --------------------------------------------------------------------------- truncation


def test_truncate_keeps_short_text_and_marks_the_cut() -> None:
    assert truncate_output("short\n", 100) == "short\n"
    text = "".join(f"row {i:05d}\n" for i in range(1000))  # 10 bytes a line
    out = truncate_output(text, 500)
    assert len(out.encode()) <= 500
    head, note, tail = re.split(r"(\[\.\.\. \d+ bytes / \d+ lines omitted \.\.\.\])\n", out)
    assert text.startswith(head) and text.endswith(tail)
    assert head.endswith("\n") and tail.startswith("row ")  # cut on line boundaries
    omitted_bytes, omitted_lines = map(int, re.findall(r"\d+", note))
    assert omitted_bytes == len(text) - len(head) - len(tail)
    assert omitted_lines == omitted_bytes // 10


def test_truncate_never_splits_a_character() -> None:
    text = "é🎉" * 5000
    out = truncate_output(text, 301)
    assert len(out.encode()) <= 301
    out.encode("utf-8")  # valid text
    assert out.startswith("é🎉") and out.endswith("é🎉")


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=80, max_value=400))
def test_truncate_property(text: str, limit: int) -> None:
    out = truncate_output(text, limit)
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        assert out == text
        return
    assert len(out.encode("utf-8", "surrogatepass")) <= limit
    m = re.search(r"\n?\[\.\.\. (\d+) bytes / \d+ lines omitted \.\.\.\]\n?", out)
    assert m is not None
    head, tail = out[: m.start()], out[m.end() :]
    assert text.startswith(head) and text.endswith(tail)
    assert int(m.group(1)) >= len(text.encode("utf-8", "surrogatepass")) - limit
