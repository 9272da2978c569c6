"""`workbench diff ID` of a session whose worktree holds build artefacts (a `node_modules/`
of 3,000 files and 200 `.pyc` files) besides one real change: with review noise set apart
(the default `[review] ignore`) against the same session shape with `ignore = []` (every
file listed, as before issue 16), both through the CLI in one daemon.

Each round rewrites 300 of the artefacts and the real file, so the daemon cannot update
the last diff path by path and computes it whole (what a re-run `npm install` or test run
costs a person who then looks at the diff). Alternating, N rounds; median, p99, load
average, and the bytes each command printed.

Run: .venv/bin/python benchmarks/review_noise.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import WORKBENCH, isolated, make_repo, median, percentile, sandbox_ok

NODE_FILES = 3000
PYC_FILES = 200
REWRITE = 300


def wb(*args: str) -> str:
    return subprocess.run([WORKBENCH, *args], check=True, capture_output=True, text=True).stdout


def artefacts(wt: Path, round_no: int) -> None:
    for i in range(NODE_FILES if round_no < 0 else REWRITE):
        f = wt / "node_modules" / f"pkg{i % 60}" / f"m{i}.js"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(f"exports.v{j} = {j + round_no};\n" for j in range(20)))
    if round_no < 0:
        for i in range(PYC_FILES):
            f = wt / f"d{i % 100:02d}" / "__pycache__" / f"f{i}.cpython-311.pyc"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(bytes(range(256)) * 4)
    (wt / "d00" / "f0.txt").write_text(f"the real change, round {round_no}\n")


def timed(*args: str) -> tuple[float, int]:
    t = time.perf_counter()
    out = wb(*args)
    return (time.perf_counter() - t) * 1000, len(out.encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    mode = "workspace" if sandbox_ok() else "off"
    with isolated("review-noise") as root:
        sessions: dict[str, tuple[str, Path]] = {}
        for kind in ("ignored", "listed"):
            repo = make_repo(root / kind, files=200, lines=20)
            if kind == "listed":
                (repo / ".workbench.toml").write_text("[review]\nignore = []\n")
            sid = wb("new", "--repo", str(repo), "--name", kind, "--agent", "sleep 100000",
                     "--sandbox", mode).strip()
            wt = Path(next(s["worktree"] for s in json.loads(wb("ls", "--json")) if s["id"] == sid))
            artefacts(wt, -1)
            sessions[kind] = (sid, wt)
        times: dict[tuple[str, str], list[float]] = {}
        sizes: dict[tuple[str, str], int] = {}
        for r in range(args.rounds):
            order = ["ignored", "listed"] if r % 2 == 0 else ["listed", "ignored"]
            for kind in order:
                sid, wt = sessions[kind]
                for what, extra in (("diff", ()), ("diff --stat", ("--stat",))):
                    artefacts(wt, r)
                    ms, size = timed("diff", sid, *extra)
                    times.setdefault((kind, what), []).append(ms)
                    sizes[(kind, what)] = size
        for sid, _wt in sessions.values():
            wb("rm", sid)
        wb("daemon", "stop")
    load = os.getloadavg()
    print(f"sandbox: {mode}; rounds: {args.rounds}; load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'command':<14} {'noise set apart':>32} {'everything listed (before)':>32}  ratio")
    for what in ("diff", "diff --stat"):
        cells = []
        for kind in ("ignored", "listed"):
            xs = times[(kind, what)]
            cells.append(f"{median(xs):>6.0f} ms (p99 {percentile(xs, 99):>5.0f}) {sizes[(kind, what)]:>8} B")
        ratio = median(times[("ignored", what)]) / median(times[("listed", what)])
        print(f"{what:<14} {cells[0]:>32} {cells[1]:>32}  {ratio:.2f}x")


if __name__ == "__main__":
    main()
