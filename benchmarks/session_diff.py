"""`workbench diff ID --stat` of a sandboxed session, end to end, against `git diff`.

Since issue 12 every diff of a session takes a snapshot *inside its sandbox* (a helper
process under bwrap), imports it into the user's repository as a verified pack, and
diffs two commits there. This measures what that costs a person at the CLI.

Reference, same run, same worktree, alternating: `git add -A -N` into a temporary index,
then `git diff --stat` (git's own diff including untracked files), run on the host.

Also timed: the same `diff` as one socket call (no CLI process start). Two changes: one
file edited (the common case while an agent works), and 500 files edited plus 200 new
ones, in a repo of 2,000 files. Reports median and p99 of N rounds and the load average.

Run: .venv/bin/python benchmarks/session_diff.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import WORKBENCH, isolated, make_repo, median, percentile, sandbox_ok


def wb(*args: str) -> str:
    return subprocess.run([WORKBENCH, *args], check=True, capture_output=True, text=True).stdout


def reference(wt: Path) -> None:
    """git diff --stat including untracked files, without touching the session's index."""
    with tempfile.TemporaryDirectory() as d:
        index = Path(d) / "index"
        own = wt / ".git" / "index"
        if own.exists():
            shutil.copy(own, index)
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        subprocess.run(["git", "add", "-A", "-N"], cwd=wt, env=env, check=True)
        subprocess.run(["git", "diff", "--stat"], cwd=wt, env=env, check=True, capture_output=True)


def timed(fn: object, *args: object) -> float:
    t = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return (time.perf_counter() - t) * 1000


def socket_diff(sid: str) -> None:
    from workbench.daemon.client import Client

    with Client("bench") as c:
        c.call("diff", id=sid, stat=True)


def measure(sid: str, wt: Path, rounds: int) -> tuple[list[float], list[float], list[float]]:
    ours: list[float] = []
    sock: list[float] = []
    ref: list[float] = []
    for i in range(rounds):
        steps = [(ours, wb, ("diff", sid, "--stat")), (sock, socket_diff, (sid,)), (ref, reference, (wt,))]
        for out, fn, args in (steps if i % 2 == 0 else steps[::-1]):
            out.append(timed(fn, *args))
    return ours, sock, ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    mode = "workspace" if sandbox_ok() else "off"
    with isolated("session-diff") as root:
        repo = make_repo(root / "repo", files=2000, lines=50)
        sid = wb("new", "--repo", str(repo), "--name", "bench", "--agent", "sleep 100000", "--sandbox", mode).strip()
        wt = Path(next(s["worktree"] for s in json.loads(wb("ls", "--json")) if s["id"] == sid))
        rows = []
        (wt / "d00" / "f0.txt").write_text("one edit\n")
        rows.append(("1 file edited", *measure(sid, wt, args.rounds)))
        for i in range(500):
            f = wt / f"d{i % 100:02d}" / f"f{i}.txt"
            f.write_text(f.read_text().replace("line 7 ", "LINE 7 "))
        for i in range(200):
            (wt / "new" / f"n{i}.txt").parent.mkdir(exist_ok=True)
            (wt / "new" / f"n{i}.txt").write_text("".join(f"new {j}\n" for j in range(50)))
        rows.append(("700 files changed", *measure(sid, wt, args.rounds)))
        wb("rm", sid)
        wb("daemon", "stop")
    load = os.getloadavg()
    print(f"sandbox: {mode}; rounds: {args.rounds}; load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'change':<18} {'workbench diff --stat':>22} {'socket call only':>22} {'git add -N + diff':>22} ratio")
    for name, ours, sock, ref in rows:
        cells = [f"{median(x):>6.0f} ms (p99 {percentile(x, 99):>4.0f})" for x in (ours, sock, ref)]
        print(f"{name:<18} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22} {median(ours) / median(ref):>5.1f}x")


if __name__ == "__main__":
    main()
