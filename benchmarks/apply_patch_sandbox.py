"""The cost of running apply_patch inside the session's sandbox (issue 12, item 3).

One `apply_patch` tool call (`agent.tools.execute`, a two-file patch: update one file, add
another) timed three ways, alternating so load changes hit each alike:

- in-daemon: the applier in the daemon's process (a `LocalRunner`), as before;
- helper, sandbox off: `session_side/apply_patch.py` as a plain subprocess (`sandbox = "off"`);
- helper, bwrap: the same helper in the session's workspace sandbox (what the daemon does).

Run: .venv/bin/python benchmarks/apply_patch_sandbox.py [--runs N]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def main() -> int:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 9
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-patch-"))
    for name in ("config", "data", "state", "cache", "runtime"):
        (tmp / name).mkdir()
    os.environ.update(XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"),
                      XDG_STATE_HOME=str(tmp / "state"), XDG_CACHE_HOME=str(tmp / "cache"),
                      XDG_RUNTIME_DIR=str(tmp / "runtime"))
    from workbench.agent.command_run import LocalRunner
    from workbench.agent.tools import ToolCall, execute, parse_call
    from workbench.core import sandbox_probe, session_repo
    from workbench.core.models import Session
    from workbench.daemon.agent_host import SandboxRunner
    from workbench.daemon.sandboxing import sandbox_command

    class Manager:
        sessions: dict[str, Session] = {}

        def sandboxed(self, s: Session, argv: list[str], spec: Any = None, *, new_session: bool = False) -> Any:
            return sandbox_command(self, s, argv, spec, new_session=new_session)  # type: ignore[arg-type]

    repo = tmp / "repo"
    repo.mkdir()
    body = "".join(f"line {i}\n" for i in range(200))
    (repo / "f.txt").write_text(body)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b",
                                                                 "commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()

    def session(mode: str) -> Session:
        sid = uuid.uuid4().hex[:12]
        wt = tmp / "data" / "workbench" / "worktrees" / sid
        session_repo.create(repo, wt, sid, f"wb/{sid}", base)
        return Session(id=sid, name=sid, repo=str(repo), branch=f"wb/{sid}", worktree=str(wt), base_commit=base,
                       base_ref="main", agent="builtin", command=[], sandbox=mode)

    def patch(i: int) -> str:
        old, new = ("line 100", f"line 100 v{i}") if i % 2 == 0 else (f"line 100 v{i - 1}", "line 100")
        return (f"*** Begin Patch\n*** Update File: f.txt\n@@\n-{old}\n+{new}\n"
                f"*** Add File: new{i}.txt\n+hello {i}\n*** End Patch\n")

    ways: dict[str, tuple[Any, Path]] = {}
    s = session("off")
    ways["in-daemon"] = (LocalRunner(), Path(s.worktree))
    s = session("off")
    ways["helper, sandbox off"] = (SandboxRunner(Manager(), s), Path(s.worktree))  # type: ignore[arg-type]
    if sandbox_probe.probe().ok:
        s = session("workspace")
        ways["helper, bwrap"] = (SandboxRunner(Manager(), s), Path(s.worktree))  # type: ignore[arg-type]

    async def once(runner: Any, root: Path, i: int) -> float:
        parsed = parse_call(ToolCall("c", "apply_patch", json.dumps({"input": patch(i)})))
        t0 = time.perf_counter()
        out = await execute(parsed, root=root, runner=runner, max_output_bytes=16_000, default_timeout_ms=10_000)
        dt = time.perf_counter() - t0
        assert not out.is_error, out.output
        return dt

    def bare(argv: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        return time.perf_counter() - t0

    def in_sandbox(s: Session, argv: list[str]) -> float:
        t0 = time.perf_counter()
        cmd = Manager().sandboxed(s, argv, new_session=True)
        try:
            subprocess.run(cmd.argv, env=cmd.env, pass_fds=cmd.pass_fds, cwd=s.worktree, check=True,
                           stdin=subprocess.DEVNULL)
        finally:
            cmd.close()
        return time.perf_counter() - t0

    python_argv = [sys.executable, "-I", "-S", "-B", "-c", "pass"]
    baselines: dict[str, Any] = {"(python -I -S, nothing)": lambda: bare(python_argv)}
    if "helper, bwrap" in ways:
        sb = session("workspace")
        baselines["(bwrap, true)"] = lambda: in_sandbox(sb, ["true"])

    times: dict[str, list[float]] = {k: [] for k in [*ways, *baselines]}
    load0 = os.getloadavg()
    for i in range(runs + 1):
        for name, (runner, root) in ways.items():
            dt = asyncio.run(once(runner, root, i))
            if i:  # the first round warms caches
                times[name].append(dt)
        for name, fn in baselines.items():
            dt = fn()
            if i:
                times[name].append(dt)
    load1 = os.getloadavg()
    print(f"runs: {runs} each, alternating; load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    for name, ts in times.items():
        print(f"{name:22} median {statistics.median(ts) * 1000:7.1f} ms   "
              f"min {min(ts) * 1000:7.1f}   max {max(ts) * 1000:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
