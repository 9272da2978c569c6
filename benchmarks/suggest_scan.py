"""Suggestions: a scan of a repository with 5,000 TODOs, and the daemon's answers meanwhile.

References, same run, rounds alternating:
- cold `workbench suggest --json` (a new HEAD each round, so the repository is scanned: grep,
  blame of the first 200 hits, ranking) vs the same git work alone (`git grep -n -z -I -E`
  + `git blame --porcelain` of the same hits), both as whole processes;
- warm `workbench suggest --json` (HEAD unchanged: the cached list) vs `workbench ls`;
- `ls` on the socket while a cold scan runs vs the same `ls` with the daemon idle.

Run: .venv/bin/python benchmarks/suggest_scan.py [--quick] [--rounds N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import WORKBENCH, Daemon, Result, Row, base_argparser, finish, git, isolated, median, percentile

PATTERN = r"(^|[^A-Za-z0-9_])(TODO|FIXME|XXX)([^A-Za-z0-9_]|$)"


def make_todo_repo(path: Path, files: int, todos_per_file: int, plain_files: int) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(files):
        f = path / "pkg" / f"m{i:04}.py"
        f.parent.mkdir(exist_ok=True)
        f.write_text("".join(f"x{j} = {j}  # TODO: item {i}.{j}\n" for j in range(todos_per_file)))
    for i in range(plain_files):
        f = path / f"d{i % 100:02}" / f"f{i}.txt"
        f.parent.mkdir(exist_ok=True)
        f.write_text(f"plain file {i}\n")
    (path / ".workbench.toml").write_text("[suggest]\ngh = false\nlint = false\ncheck = false\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def timed(argv: list[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - t0


def git_reference(repo: Path) -> float:
    """What a TODO scan must do at least: the grep, and blame of the first 200 hits."""
    t0 = time.perf_counter()
    out = subprocess.run(["git", "grep", "-n", "-z", "-I", "-E", "-e", PATTERN], cwd=repo, capture_output=True,
                         check=True).stdout
    by_file: dict[str, list[str]] = {}
    for rec in out.split(b"\n")[:200]:
        parts = rec.split(b"\0", 2)
        if len(parts) == 3:
            by_file.setdefault(parts[0].decode(), []).append(parts[1].decode())
    for path, lines in by_file.items():
        ranges = [a for ln in lines for a in ("-L", f"{ln},{ln}")]
        subprocess.run(["git", "blame", "--porcelain", *ranges, "--", path], cwd=repo, capture_output=True,
                       check=True)
    return time.perf_counter() - t0


def new_head(repo: Path, i: int) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", f"round {i}")


def ls_latencies(d: Daemon, repo: Path, scan: bool, calls: int) -> list[float]:
    """`ls` round trips on one connection; with `scan`, a cold scan was started just before."""
    out = []
    with d.client() as c:
        if scan:
            reply = c.call("suggest", repo=str(repo), wait=False)
            assert reply["scanning"], "the scan did not start"
        for _ in range(calls):
            t0 = time.perf_counter()
            c.call("ls")
            out.append(time.perf_counter() - t0)
        if scan:  # let the scan end before the next phase
            c.call("suggest", repo=str(repo))
    return out


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    rounds = args.rounds or (3 if args.quick else 5)
    res = Result("suggest_scan", "Suggestions: scanning 5,000 TODOs", args.quick)
    load_before = os.getloadavg()
    with isolated("suggest") as root:
        repo = make_todo_repo(root / "repo", 200, 25, 500 if args.quick else 5000)
        with Daemon(root) as d:
            wb_cold, ref_cold, wb_warm, ref_warm, busy, idle = [], [], [], [], [], []
            suggest = [WORKBENCH, "suggest", "--json", "--repo", str(repo)]
            timed(suggest)  # warm the page cache and the daemon's imports
            for i in range(rounds):
                new_head(repo, i)
                ref_cold.append(git_reference(repo))
                wb_cold.append(timed(suggest))
                ref_warm.append(timed([WORKBENCH, "ls"]))
                wb_warm.append(timed(suggest))
                new_head(repo, 1000 + i)
                idle += ls_latencies(d, repo, False, 30)
                busy += ls_latencies(d, repo, True, 30)
    ms = 1000
    res.add(Row("cold `workbench suggest --json` (new HEAD: grep, blame of 200 hits, rank)", median(wb_cold) * ms,
                "ms", median(ref_cold) * ms, "git grep + git blame", median(wb_cold) / median(ref_cold),
                detail=f"p99 {percentile(wb_cold, 99) * ms:.0f} ms vs {percentile(ref_cold, 99) * ms:.0f} ms"))
    res.add(Row("warm `workbench suggest --json` (cached by HEAD)", median(wb_warm) * ms, "ms",
                median(ref_warm) * ms, "workbench ls", median(wb_warm) / median(ref_warm),
                detail=f"p99 {percentile(wb_warm, 99) * ms:.0f} ms vs {percentile(ref_warm, 99) * ms:.0f} ms"))
    res.add(Row("`ls` on the socket during a cold scan, median", median(busy) * ms, "ms", median(idle) * ms,
                "ls with the daemon idle", median(busy) / median(idle)))
    res.add(Row("`ls` on the socket during a cold scan, p99", percentile(busy, 99) * ms, "ms",
                percentile(idle, 99) * ms, "ls with the daemon idle", percentile(busy, 99) / percentile(idle, 99)))
    res.notes.append(f"{rounds} rounds, alternating; 200 files x 25 TODOs among "
                     f"{500 if args.quick else 5000} other files; {len(busy)} `ls` calls per phase")
    res.notes.append("load average before: " + " ".join(f"{x:.2f}" for x in load_before)
                     + "; after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
