"""Scale and memory: daemon RSS with 1, 8 and 32 idle shell sessions, and churn.

1. RSS of the daemon process with 1, 8 and 32 idle `shell` sessions (each waiting at its
   prompt); per extra session = (RSS at 32 - RSS at 1) / 31. Reference, same run: a tmux
   server holding the same number of idle bash sessions.
2. Churn: 32 sessions created and removed, 10 times. After each round: the daemon's open
   file descriptors, its descendant processes and its RSS. Growth = last round - first.

Run: .venv/bin/python benchmarks/scale.py [--quick]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Daemon,
    Result,
    Row,
    base_argparser,
    descendants,
    fd_count,
    finish,
    isolated,
    make_repo,
    rss_kb,
    sandbox_ok,
    wait_for,
)

COUNTS = (1, 8, 32)
# One request at a time: concurrent `new` calls on one repo can fail in `git worktree add`
# ("failed to read .git/worktrees/NAME/commondir"), a bug reported in docs/performance.md.
PARALLEL = 1


def create(d: Daemon, repo: Path, n: int, sandbox: str, tag: str) -> list[str]:
    def one(i: int) -> str:
        with d.client() as c:
            return str(c.call("new", repo=str(repo), agent="shell", sandbox=sandbox,
                              name=f"{tag}-{i}")["id"])

    with ThreadPoolExecutor(PARALLEL) as pool:
        ids = list(pool.map(one, range(n)))
    # Idle means: every shell has started and printed its prompt.
    wait_for(lambda: all(s["alive"] for s in d.call("ls")), 30, 0.1)
    wait_for(lambda: all(
        any(line.rstrip().endswith(("$", "#")) for line in d.call("screen", id=i)["lines"])
        for i in ids
    ), 30, 0.2)
    return ids


def remove(d: Daemon, ids: list[str]) -> None:
    def one(sid: str) -> None:
        with d.client() as c:
            c.call("rm", id=sid)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, ids))


def settle(pid: int) -> int:
    """RSS after the allocator has had a moment; the median of a few reads."""
    time.sleep(1.0)
    vals = []
    for _ in range(5):
        vals.append(rss_kb(pid))
        time.sleep(0.1)
    return sorted(vals)[len(vals) // 2]


def tmux_rss(root: Path, counts: tuple[int, ...]) -> dict[int, int]:
    sock = f"wbscale{os.getpid()}"
    base = ["tmux", "-L", sock, "-f", "/dev/null"]
    out: dict[int, int] = {}
    have = 0
    try:
        for n in counts:
            while have < n:
                subprocess.run([*base, "new-session", "-d", "-s", f"s{have}", "-x", "120", "-y", "40",
                                "bash --norc -i"], check=True, cwd=root)
                have += 1
            pid = int(subprocess.run([*base, "display", "-p", "#{pid}"], capture_output=True,
                                     text=True, check=True).stdout.strip())
            out[n] = settle(pid)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)
    return out


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    rounds = args.rounds or (2 if args.quick else 10)
    counts = (1, 4, 8) if args.quick else COUNTS
    churn_n = 8 if args.quick else 32
    sandbox = "workspace" if sandbox_ok() else "off"
    res = Result("scale", "5. Scale and memory", args.quick)
    with isolated("scale") as root:
        repo = make_repo(root / "repo", files=20)
        with Daemon(root) as d:
            rss: dict[int, int] = {}
            ids: list[str] = []
            for n in counts:
                ids += create(d, repo, n - len(ids), sandbox, f"idle{n}")
                rss[n] = settle(d.pid)
            remove(d, ids)
            ref = tmux_rss(root, counts)
            for n in counts:
                res.add(Row(f"daemon RSS, {n} idle shell session(s)", rss[n] / 1024, "MB",
                            ref[n] / 1024, "tmux server"))
            lo, hi = counts[0], counts[-1]
            per = (rss[hi] - rss[lo]) / (hi - lo) / 1024
            per_ref = (ref[hi] - ref[lo]) / (hi - lo) / 1024
            res.add(Row("daemon RSS per extra session", per, "MB", per_ref, "tmux server",
                        per / per_ref if per_ref > 0 else None, "< 15"))

            # Churn. The first round warms caches (imports, sqlite pages), so it is the base.
            history: list[tuple[int, int, int]] = []
            for r in range(rounds):
                remove(d, create(d, repo, churn_n, sandbox, f"churn{r}"))
                time.sleep(0.5)
                history.append((fd_count(d.pid), len(descendants(d.pid)), settle(d.pid)))
            fd0, pr0, rss0 = history[0]
            fd1, pr1, rss1 = history[-1]
            res.add(Row(f"daemon fds growth over {rounds} x {churn_n} create+remove", fd1 - fd0,
                        "fds", fd0, "after round 1", goal="<= 0"))
            res.add(Row(f"daemon child processes growth over {rounds} rounds", pr1 - pr0,
                        "processes", pr0, "after round 1", goal="<= 0"))
            res.add(Row(f"daemon RSS growth over {rounds} rounds", (rss1 - rss0) / 1024, "MB",
                        rss0 / 1024, "RSS after round 1", goal="< 5"))
            res.extra = {"rss_kb": rss, "tmux_rss_kb": ref, "churn": history}
    res.notes.append(
        "child processes seen between rounds are GitPython's persistent `git cat-file` "
        "helpers (one per worker thread that touched a repo): a small fixed pool"
    )
    res.notes.append(
        f"sandbox={sandbox}; sessions are `--agent shell` (bash -i) at 120x40; RSS is the "
        "daemon process only (each session's bash and bwrap are separate processes, "
        f"not counted; neither are tmux's); {PARALLEL} request(s) in flight during create/remove"
    )
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
