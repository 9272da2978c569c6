"""apply_patch inside the session's sandbox: the helper, the daemon's runner and the race.

A session that swaps a directory of its worktree for a symlink in a tight loop used to win
the applier's check-then-write race when the daemon applied patches itself (issue 12). Now
the daemon runs `session_side/apply_patch.py` in the session's sandbox, and the applier opens
every path component with O_NOFOLLOW, so neither a sandboxed nor an unsandboxed session can
make a patch write outside its worktree.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo
from workbench import paths
from workbench.agent.command_run import LocalRunner
from workbench.agent.patch import PatchError, apply_patch
from workbench.agent.tools import ToolCall, ToolOutcome, execute, parse_call
from workbench.core import session_repo
from workbench.core.models import Session
from workbench.daemon.agent_host import SandboxRunner
from workbench.daemon.sandboxing import sandbox_command


def P(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"])


def _bwrap_ok() -> bool:
    from workbench.core import sandbox_probe

    return sandbox_probe.probe().ok


class _Manager:
    """The slice of SessionManager the runner uses: the daemon's own `sandbox_command`."""

    sessions: dict[str, Session] = {}

    def sandboxed(self, s: Session, argv: list[str], spec: Any = None, *, new_session: bool = False) -> Any:
        return sandbox_command(self, s, argv, spec, new_session=new_session)  # type: ignore[arg-type]


def _session(tmp_path: Path, mode: str) -> Session:
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n", "d/f.txt": "a\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    sid = uuid.uuid4().hex[:12]
    wt = paths.data_dir() / "worktrees" / sid
    session_repo.create(repo, wt, sid, f"wb/{sid}", base)
    return Session(id=sid, name=sid, repo=str(repo), branch=f"wb/{sid}", worktree=str(wt), base_commit=base,
                   base_ref="main", agent="builtin", command=[], sandbox=mode)


async def _apply(runner: Any, root: Path, patch: str, workdir: str | None = None) -> ToolOutcome:
    args: dict[str, Any] = {"input": patch}
    if workdir:
        args["workdir"] = workdir
    parsed = parse_call(ToolCall("c1", "apply_patch", json.dumps(args)))
    return await execute(parsed, root=root, runner=runner, max_output_bytes=16_000, default_timeout_ms=10_000)


# --------------------------------------------------------------------------- same output


PATCHES: list[tuple[str, str | None]] = [
    (P("*** Add File: notes/new.txt", "+hello"), None),
    (P("*** Update File: d/f.txt", "@@", "-a", "+b", "*** Add File: d/g.txt", "+g"), None),
    (P("*** Update File: f.txt", "*** Move to: moved.txt", "@@", "-b", "+c"), "d"),
    (P("*** Delete File: d/g.txt"), None),
    (P("*** Update File: moved.txt", "@@", "-nope", "+x"), "d"),  # hunk does not apply
    (P("*** Add File: ../escape.txt", "+x"), "d"),  # '..' refused by the parser
    (P("*** Update File: link/f.txt", "@@", "-c", "+x"), None),  # through a symlink
    (P("*** Add File: README.md/x", "+x"), None),  # below a file
    (P("*** Update File: missing.txt", "@@", "-a", "+b"), None),
]


def test_the_sandboxed_helper_answers_exactly_as_the_in_process_applier(tmp_path: Path) -> None:
    s = _session(tmp_path, "off")
    wt = Path(s.worktree)
    twin = tmp_path / "twin"
    shutil.copytree(wt, twin, symlinks=True)
    for root in (wt, twin):
        (root / "link").symlink_to("d")
    helper, local = SandboxRunner(_Manager(), s), LocalRunner()  # type: ignore[arg-type]
    errors = []
    for patch, workdir in PATCHES:
        got = asyncio.run(_apply(helper, wt, patch, workdir))
        want = asyncio.run(_apply(local, twin, patch, workdir))
        assert (got.output, got.is_error, got.changed_files) == (want.output, want.is_error, want.changed_files)
        errors.append(got.is_error)
    assert errors == [False] * 4 + [True] * 5
    assert sorted(p.name for p in (wt / "d").iterdir()) == ["moved.txt"]
    assert (wt / "d" / "moved.txt").read_text() == "c\n"


def test_a_failing_helper_is_an_error_for_the_model_not_a_crash(tmp_path: Path) -> None:
    from workbench.agent.tools import PatchUnavailable
    from workbench.daemon.agent_host import patch_reply

    ok = json.dumps({"ok": True, "added": ["a"], "modified": [], "deleted": [], "moved": [["b", "c"]]}).encode()
    assert patch_reply(0, ok, b"").paths() == ["a", "b", "c"]
    with pytest.raises(PatchError, match=r"^nope$"):
        patch_reply(0, b'{"ok": false, "error": "nope"}', b"")
    for code, out, err in [
        (1, b"", b"Traceback...\nImportError: \x1b[31mboom"),
        (0, b"not json", b""),
        (0, b'{"ok": true, "added": [1], "modified": [], "deleted": [], "moved": []}', b""),
        (0, b'{"ok": true, "added": [], "modified": [], "deleted": [], "moved": [["a"]]}', b""),
        (0, b'{"ok": false, "error": 3}', b""),
        (0, b"[]", b""),
    ]:
        with pytest.raises(PatchUnavailable) as info:
            patch_reply(code, out, err)
        assert "\x1b" not in str(info.value)

    class BrokenHelper(_Manager):
        def sandboxed(self, s: Session, argv: list[str], spec: Any = None, *, new_session: bool = False) -> Any:
            code = "import sys; sys.stdin.read(); sys.exit('helper broke')"
            return super().sandboxed(s, [sys.executable, "-c", code], spec, new_session=new_session)

    s = _session(tmp_path, "off")
    runner = SandboxRunner(BrokenHelper(), s)  # type: ignore[arg-type]
    out = asyncio.run(_apply(runner, Path(s.worktree), P("*** Add File: a", "+x")))
    assert out.is_error
    assert out.output == "apply_patch could not run: the patch helper failed inside the sandbox: helper broke"
    assert not (Path(s.worktree) / "a").exists()


# --------------------------------------------------------------------------- the race

# A session's attack: swap `d` (a real directory) and `dl` (a symlink to a directory outside
# the worktree) with renameat2(RENAME_EXCHANGE), as fast as it can, so `d` is a directory
# whenever it is checked and, with luck, a symlink when it is written through.
SWAPPER = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b, end = sys.argv[1].encode(), sys.argv[2].encode(), time.monotonic() + float(sys.argv[3])
print("swapping", flush=True)
n = 0
while time.monotonic() < end:
    n += libc.renameat2(-100, a, -100, b, 2) == 0
print(n, flush=True)
"""


def _arm(s: Session) -> tuple[Path, Path, dict[str, bytes]]:
    """The worktree with `d/` and `dl -> outside`; `outside` in the user's checkout (read-only
    in the sandbox, as the rest of the host is to a session), and what it holds."""
    wt = Path(s.worktree)
    outside = Path(s.repo) / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("keep\n")
    (wt / "dl").symlink_to(outside)
    return wt, outside, _contents(outside)


def _contents(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _start_swapper(argv: list[str], wt: Path, env: dict[str, str] | None = None,
                   pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, cwd=wt, env=env, pass_fds=pass_fds, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "swapping"
    return proc


async def _race(runner: Any, wt: Path, outside: Path, before: dict[str, bytes], budget_s: float,
                min_tries: int = 0) -> list[int]:
    """Apply patches into `d/` for `budget_s` (and at least `min_tries` times, however loaded
    the machine); stop at the first write outside.

    Returns [applied, refused, crashed]: a crash (an exception instead of an error for the
    model) is counted and the race goes on, so a write outside is still caught after one."""
    counts = [0, 0, 0]
    end = time.monotonic() + budget_s
    i = 0
    while (time.monotonic() < end or i < min_tries) and i < 20_000:
        i += 1
        patch = P("*** Add File: d/f.txt", f"+attempt {i}", "*** Add File: d/new.txt", "+x")
        try:
            out = await _apply(runner, wt, patch)
        except OSError:
            counts[2] += 1
        else:
            counts[out.is_error] += 1
        if _contents(outside) != before:
            break
    return counts


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.communicate(timeout=10)


def test_sandbox_off_the_applier_refuses_symlinked_components_even_when_raced(tmp_path: Path) -> None:
    s = _session(tmp_path, "off")
    wt, outside, before = _arm(s)
    # Unraced: a symlinked directory is refused outright, whatever it points at.
    with pytest.raises(PatchError, match="goes through the symlink 'dl'"):
        apply_patch(P("*** Add File: dl/f.txt", "+x"), wt)
    with pytest.raises(PatchError, match="does not follow symlinks"):
        apply_patch(P("*** Update File: dl/f.txt", "@@", "-keep", "+x"), wt)
    assert _contents(outside) == before
    # Raced: in this process (fast, thousands of tries), then through the daemon's runner.
    swapper = _start_swapper([sys.executable, "-c", SWAPPER, "d", "dl", "30"], wt)
    try:
        fast = asyncio.run(_race(LocalRunner(), wt, outside, before, 3.0))
        assert _contents(outside) == before, f"a patch wrote outside the worktree ({fast})"
        helper = asyncio.run(_race(SandboxRunner(_Manager(), s), wt, outside, before, 3.0, 6))  # type: ignore[arg-type]
        assert _contents(outside) == before, f"a patch wrote outside the worktree ({helper})"
    finally:
        _stop(swapper)
    assert fast[0] and fast[1] and not fast[2], fast
    assert helper[0] + helper[1] > 5 and not helper[2], helper
    assert not list(outside.glob(".*"))


@pytest.mark.sandbox
@pytest.mark.skipif(not _bwrap_ok(), reason="bubblewrap cannot run here")
def test_a_session_racing_symlinks_cannot_make_a_patch_write_outside_its_worktree(tmp_path: Path) -> None:
    s = _session(tmp_path, "workspace")
    wt, outside, before = _arm(s)
    mgr = _Manager()
    # The attacker runs as the session, inside its sandbox (the same one its shell gets).
    cmd = mgr.sandboxed(s, [sys.executable, "-c", SWAPPER, "d", "dl", "60"], new_session=True)
    try:
        swapper = _start_swapper(cmd.argv, wt, env=cmd.env, pass_fds=tuple(cmd.pass_fds))
    finally:
        cmd.close()
    try:
        counts = asyncio.run(_race(SandboxRunner(mgr, s), wt, outside, before, 6.0, 10))  # type: ignore[arg-type]
        assert _contents(outside) == before, f"a patch wrote outside the worktree ({counts})"
    finally:
        _stop(swapper)
    assert sum(counts) >= 10 and not counts[2], counts
    assert not list(outside.glob(".*"))


def test_temporaries_of_a_killed_daemon_are_removed_inside_the_sandbox(tmp_path: Path) -> None:
    s = _session(tmp_path, "off")
    wt = Path(s.worktree)
    (wt / "sub").mkdir()
    stale = [".a.txt.wb-patch-999999.tmp", "sub/.b.wb-patch-1.tmp"]
    mine = f".c.wb-patch-{os.getpid()}.tmp"  # this daemon's: a patch may be applying right now
    for rel in [*stale, mine, ".d.wb-patch-x.tmp"]:
        (wt / rel).write_text("partial")
    removed = asyncio.run(SandboxRunner(_Manager(), s).remove_stale_patch_temps())  # type: ignore[arg-type]
    assert sorted(removed) == stale
    assert not any((wt / rel).exists() for rel in stale)
    assert (wt / mine).exists() and (wt / ".d.wb-patch-x.tmp").exists()
