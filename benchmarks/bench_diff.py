"""compute_diff on a 2,000-file / 50,000-added-line change vs plain `git diff`.

Usage: python benchmarks/bench_diff.py [--runs N]
Builds a throw-away repo (4,000 files x 100 lines), a worktree where 1,500 files have 25
lines replaced and 500 new untracked files of 25 lines, then times (median of N runs):
  git diff <base>                 plain git, tracked files only, output discarded
  compute_diff(worktree, base)    temp index + `git add -N -A` + `git diff` + parsing
  parse_unified(text)             the parser alone on the same output
  first page                      compute_diff + the daemon's first `diff` reply (file list
                                  for all files, hunk lines up to the reply budget), as JSON
  first 256 KB page               the same with `max_bytes=256000` (a quick first screen)
  every line                      Diff.to_json() of the whole change (all line objects built)
Goal (benchmarks issue): compute_diff <= 2x `git diff`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from workbench.core.diff_parse import parse_unified
from workbench.core.review import ReviewState
from workbench.core.worktree_diff import compute_diff
from workbench.daemon.review_replies import diff_reply

ENV_ID = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *ENV_ID, *args], cwd=cwd, check=True, capture_output=True).stdout


def build(root: Path) -> tuple[Path, str]:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(4000):
        p = repo / f"pkg{i % 40}" / f"mod{i}.py"
        p.parent.mkdir(exist_ok=True)
        p.write_text("".join(f"line {j} of file {i}\n" for j in range(100)))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").decode().strip()
    wt = root / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wb/bench", str(wt), base)
    for i in range(1500):
        p = wt / f"pkg{i % 40}" / f"mod{i}.py"
        lines = p.read_text().splitlines(keepends=True)
        for j in range(0, 100, 4):
            lines[j] = f"changed {j} in {i}\n"
        p.write_text("".join(lines))
    for i in range(500):
        p = wt / "new" / f"n{i}.py"
        p.parent.mkdir(exist_ok=True)
        p.write_text("".join(f"new {j} {i}\n" for j in range(25)))
    return wt, base


def timed(fn: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="wb-bench-diff-") as tmp:
        wt, base = build(Path(tmp))
        diff = compute_diff(wt, base)  # warm the page cache
        files, added, removed = diff.stat()
        text = git(wt, "diff", base).decode()
        plain = timed(lambda: git(wt, "diff", base), runs)
        ours = timed(lambda: compute_diff(wt, base), runs)
        parse = timed(lambda: parse_unified(text), runs)
        state = ReviewState("bench")

        def first_page() -> None:
            d = compute_diff(wt, base)
            json.dumps(diff_reply(d, state, stat_only=False, unified=False, offset=0))

        page = timed(first_page, runs)

        def first_screen() -> None:
            d = compute_diff(wt, base)
            json.dumps(diff_reply(d, state, stat_only=False, unified=False, offset=0, budget_bytes=256_000))

        screen = timed(first_screen, runs)
        every = timed(lambda: json.dumps(compute_diff(wt, base).to_json()), runs)
        print(f"change: {files} files, +{added} -{removed} lines")
        print(f"git diff <base>:   {plain * 1000:7.0f} ms")
        print(f"compute_diff:      {ours * 1000:7.0f} ms  ({ours / plain:.1f}x git diff)")
        print(f"parse_unified:     {parse * 1000:7.0f} ms")
        print(f"first page (JSON): {page * 1000:7.0f} ms  ({page / plain:.1f}x git diff)")
        print(f"first 256 KB page: {screen * 1000:7.0f} ms  ({screen / plain:.1f}x git diff)")
        print(f"every line (JSON): {every * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
