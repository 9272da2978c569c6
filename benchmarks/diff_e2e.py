"""`workbench diff ID` (every page) and `workbench diff ID --stat`, end to end through the
CLI, against `git diff` of the same change including untracked files (issue 15, item 3).

A repo of 4,000 files x 100 lines, a `workspace` session (plain with `--sandbox off` where
bubblewrap cannot run), two changes in its worktree: 2,000 files (1,500 edited with 25
lines replaced, 500 new files of 25 lines: +50,000 -37,500) and 1 file edited.

Timed, alternating with the reference in every round:
  warm   the CLI on a session unchanged since its last diff (the daemon keeps the diff)
  cold   one file of the change rewritten just before the CLI runs (a new snapshot and
         diff: what the first look after an agent's edit costs)
  socket the CLI's own requests on a socket, without the CLI process
  ui     the UI diff panel's first screen (a 32 KB page) and first page (1 MB), each
         fetched and prepared for painting without colours (headless, in this process)
  git    `git add -A -N` into a temporary index, then `git diff` / `git diff --stat`
         (output read through a pipe, as the CLI's is)
Every CLI output is checked against the first one (same bytes each time).

Then echo: keys typed into another session (`cat`, the kernel echoes) and timed until the
echo shows in a received frame, while a loop in another process keeps making cold
2,000-file diffs, and the same typing with no diff running: phase by phase, alternating,
in each of the rounds. The idle phases of even rounds against those of odd ones say how
far p99 moves by itself.

Run: .venv/bin/python benchmarks/diff_e2e.py [--rounds N] [--keys N] [--quick]
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    PYTHON,
    WORKBENCH,
    Daemon,
    Result,
    Row,
    base_argparser,
    finish,
    git,
    isolated,
    median,
    new_session,
    percentile,
    sandbox_ok,
    wait_for,
)

FILES, LINES = 4000, 100


def build_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(FILES):
        p = path / f"pkg{i % 40}" / f"mod{i}.py"
        p.parent.mkdir(exist_ok=True)
        p.write_text("".join(f"line {j} of file {i}\n" for j in range(LINES)))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    return path


def big_change(wt: Path) -> None:
    for i in range(1500):
        p = wt / f"pkg{i % 40}" / f"mod{i}.py"
        lines = p.read_text().splitlines(keepends=True)
        for j in range(0, LINES, 4):
            lines[j] = f"changed {j} in {i}\n"
        p.write_text("".join(lines))
    for i in range(500):
        p = wt / "new" / f"n{i}.py"
        p.parent.mkdir(exist_ok=True)
        p.write_text("".join(f"new {j} {i}\n" for j in range(25)))


def small_change(wt: Path) -> None:
    p = wt / "pkg0" / "mod0.py"
    p.write_text(p.read_text().replace("line 7 ", "LINE 7 "))


def git_reference(wt: Path, stat: bool) -> bytes:
    """git's own diff including untracked files, without touching the session's index."""
    with tempfile.TemporaryDirectory() as d:
        index = Path(d) / "index"
        own = wt / ".git" / "index"
        if own.exists():
            shutil.copy(own, index)
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        subprocess.run(["git", "add", "-A", "-N"], cwd=wt, env=env, check=True)
        return subprocess.run(["git", "diff", *(["--stat"] if stat else [])], cwd=wt, env=env, check=True,
                              capture_output=True).stdout


def cli(sid: str, stat: bool) -> bytes:
    args = [WORKBENCH, "diff", sid, *(["--stat"] if stat else [])]
    return subprocess.run(args, check=True, capture_output=True).stdout


def socket_diff(sid: str, stat: bool) -> None:
    """What the CLI asks for, on one connection, without the CLI process."""
    from workbench.daemon.client import Client
    from workbench.errors import WorkbenchError

    extra: dict[str, Any] = {"text_only": True} if TEXT_ONLY else {}
    with Client("bench") as c:
        try:
            page = c.call("diff", id=sid, **({"stat": True} if stat else {"format": "unified"}), **extra)
        except WorkbenchError:  # a daemon from before `text_only` (a before/after run)
            if not TEXT_ONLY:
                raise
            TEXT_ONLY.clear()
            return socket_diff(sid, stat)
        while not stat and page.get("next") is not None:
            page = c.call("diff", id=sid, format="unified", offset=page["next"], **extra)


TEXT_ONLY = [True]


def ui_screen(sid: str, max_bytes: int) -> None:
    """What the UI's diff panel does before it can paint: one page (32 KB: its first
    screen; 1 MB: its first page), then the rows prepared without colours (headless)."""
    from workbench.daemon.client import Client
    from workbench.ui.diff_doc import layout, prepare

    with Client("bench") as c:
        result = c.call("diff", id=sid, max_bytes=max_bytes)
    layout(prepare(result, set(), {}, True, set(), False), False)


class Toucher:
    """Rewrites one file of the change so the next diff is a new one (cold); `restore`
    puts it back, so the warm outputs stay the same bytes."""

    def __init__(self, wt: Path) -> None:
        self.path = wt / "pkg0" / "mod0.py"
        self.original = self.path.read_text()
        self.n = 0

    def __call__(self) -> None:
        self.n += 1
        self.path.write_text(self.original.replace("line 1 ", f"touched {self.n} ", 1))

    def restore(self) -> None:
        self.path.write_text(self.original)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def measure(sid: str, wt: Path, rounds: int) -> dict[str, list[float]]:
    touch = Toucher(wt)
    seen: dict[str, bytes] = {}
    out: dict[str, list[float]] = {}

    def check(name: str, data: bytes) -> None:
        # git abbreviates blob names in `index` lines by the number of objects in the
        # repository, which every imported snapshot adds to.
        data = re.sub(rb"(?m)^index ([0-9a-f]{7})[0-9a-f]*\.\.([0-9a-f]{7})[0-9a-f]*", rb"index \1..\2", data)
        first = seen.setdefault(name, data)
        if first != data:
            dump = Path(tempfile.gettempdir()) / f"diff-e2e-{name.replace(' ', '-')}"
            dump.with_suffix(".first").write_bytes(first)
            dump.with_suffix(".now").write_bytes(data)
            raise RuntimeError(f"{name}: the output changed between rounds (see {dump}.first and .now)")

    def cold(stat: bool) -> bytes:
        touch()
        return cli(sid, stat)

    steps: list[tuple[str, Callable[[], Any], str | None]] = [
        ("warm diff", lambda: cli(sid, False), "diff"),
        ("warm stat", lambda: cli(sid, True), "stat"),
        ("socket diff", lambda: socket_diff(sid, False), None),
        ("socket stat", lambda: socket_diff(sid, True), None),
        ("ui-32KB diff", lambda: ui_screen(sid, 32_000), None),
        ("ui-1MB diff", lambda: ui_screen(sid, 1_000_000), None),
        ("git diff", lambda: git_reference(wt, False), None),
        ("git stat", lambda: git_reference(wt, True), None),
        ("cold diff", lambda: cold(False), None),
        ("cold stat", lambda: cold(True), None),
    ]
    cli(sid, False)  # the first look (untimed): the daemon takes its snapshot
    for i in range(rounds):
        for name, fn, kind in (steps if i % 2 == 0 else steps[::-1]):
            ms, data = timed(fn)
            out.setdefault(name, []).append(ms)
            if kind is not None:
                check(kind, data)
            if name.startswith("cold"):
                touch.restore()
                cli(sid, False)  # settle (untimed): the next warm step sees an unchanged session
    return out


def diff_loop(sid: str, wt: str) -> None:
    """In its own process: cold 2,000-file diffs (socket, --stat) until stdin closes."""
    import select

    touch = Toucher(Path(wt))
    n = 0
    while not select.select([sys.stdin], [], [], 0)[0]:
        touch()
        socket_diff(sid, True)
        n += 1
    print(n, flush=True)


def typed(d: Daemon, repo: Path, mode: str, name: str, keys: int, seed: int) -> tuple[list[float], list[float]]:
    """Echo latencies of `keys` keys typed into a fresh `cat` session, and the daemon's
    event-loop lag sampled meanwhile."""
    from responsiveness import LagSampler, Typist

    sid = new_session(d, repo, "cat", sandbox=mode, name=name)["id"]
    wait_for(lambda: d.call("get", id=sid)["state"] == "running", 20)
    typist = Typist(d, sid)
    lag = LagSampler(d)
    lag.start()
    try:
        return typist.type(keys, random.Random(seed)), lag.samples
    finally:
        lag.stop.set()
        lag.join(5)
        typist.close()
        d.call("rm", id=sid)


def echo(d: Daemon, repo: Path, sid: str, wt: Path, keys: int, rounds: int, mode: str) -> dict[str, list[float]]:
    """Echo of another session with and without cold diffs being computed, alternating
    phase by phase over `rounds` rounds (`keys` keys a phase in all)."""
    out: dict[str, list[float]] = {"idle": [], "idle lag": [], "diffing": [], "diffing lag": [],
                                   "idle even": [], "idle odd": []}
    diffs = 0
    per_round = max(10, keys // rounds)
    for r in range(rounds):
        for phase in (("idle", "diffing") if r % 2 == 0 else ("diffing", "idle")):
            if phase == "idle":
                xs, lags = typed(d, repo, mode, f"typist-idle-{r}", per_round, 2 * r + 1)
                out["idle even" if r % 2 == 0 else "idle odd"] += xs
            else:
                loop = subprocess.Popen([PYTHON, __file__, "--diff-loop", sid, str(wt)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
                try:
                    time.sleep(0.5)
                    xs, lags = typed(d, repo, mode, f"typist-diffing-{r}", per_round, 2 * r + 2)
                finally:
                    assert loop.stdin is not None and loop.stdout is not None
                    loop.stdin.close()
                    diffs += int(loop.stdout.read().strip() or 0)
                    loop.wait(60)
            out[phase] += xs
            out[f"{phase} lag"] += lags
    out["diffs"] = [float(diffs)]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--diff-loop":
        diff_loop(sys.argv[2], sys.argv[3])
        return
    ap = base_argparser(__doc__)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--keys", type=int, default=0)
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    keys = args.keys or (40 if args.quick else 1000)
    mode = "workspace" if sandbox_ok() else "off"
    res = Result("diff_e2e", "Diff end to end (CLI)", args.quick)
    started = time.monotonic()
    load_before = os.getloadavg()
    with isolated("diff-e2e") as root, Daemon(root) as d:
        repo = build_repo(root / "repo")
        sid = new_session(d, repo, "sleep 100000", sandbox=mode, name="bench")["id"]
        wait_for(lambda: d.call("get", id=sid)["state"] == "running", 30)
        wt = Path(d.call("get", id=sid)["worktree"])
        big_change(wt)
        big = measure(sid, wt, rounds)
        lag = echo(d, repo, sid, wt, keys, rounds, mode)
        d.call("rm", id=sid)
        sid1 = new_session(d, repo, "sleep 100000", sandbox=mode, name="one")["id"]
        wait_for(lambda: d.call("get", id=sid1)["state"] == "running", 30)
        wt1 = Path(d.call("get", id=sid1)["worktree"])
        small_change(wt1)
        one = measure(sid1, wt1, rounds)
    load = os.getloadavg()
    for label, data in (("2,000 files", big), ("1 file", one)):
        for kind in ("diff", "stat"):
            ref = data[f"git {kind}"]
            what = "`workbench diff`" if kind == "diff" else "`workbench diff --stat`"
            for temp in ("warm", "cold", "socket", "ui-32KB", "ui-1MB"):
                if f"{temp} {kind}" not in data:
                    continue
                xs = data[f"{temp} {kind}"]
                res.add(Row(f"{label}: {what} {temp}", median(xs), "ms", median(ref), f"git {kind}",
                            median(xs) / median(ref), "ratio <= 1.5" if temp in ("warm", "cold") else "",
                            detail=f"p99 {percentile(xs, 99):.0f} ms; git p99 {percentile(ref, 99):.0f} ms"))
    for phase in ("idle", "diffing"):
        xs, lags = lag[phase], lag[phase + " lag"]
        res.add(Row(f"echo of another session, {phase}: p50", median(xs), "ms"))
        res.add(Row(f"echo of another session, {phase}: p99", percentile(xs, 99), "ms"))
        res.add(Row(f"daemon event-loop lag, {phase}: p99", percentile(lags, 99), "ms",
                    detail=f"max {max(lags, default=0):.1f} ms, {len(lags)} samples"))
    # "Unchanged" read against the noise: the idle phases of even rounds against odd ones.
    idle_p99, busy_p99 = percentile(lag["idle"], 99), percentile(lag["diffing"], 99)
    even, odd = percentile(lag["idle even"], 99), percentile(lag["idle odd"], 99)
    res.add(Row("echo of another session p99, while a 2,000-file diff is computed", busy_p99, "ms",
                idle_p99, "the same, no diff computed", busy_p99 / idle_p99, "ratio <= 1.5",
                detail=f"idle against idle (even / odd rounds): {even:.1f} / {odd:.1f} ms, "
                       f"ratio {max(even, odd) / max(min(even, odd), 1e-9):.2f}"))
    res.notes.append(f"sandbox={mode}; {rounds} rounds alternating with git; {keys} keys per echo phase "
                     f"over {rounds} alternating rounds, "
                     f"{int(lag['diffs'][0])} cold diffs while typing; load average before "
                     f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
                     f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finish(res, started, save=not args.no_save)
    print()
    print(f"{'measurement':<44} {'median':>8} {'p99':>8} {'git':>8} {'git p99':>8} ratio")
    for label, data in (("2,000 files", big), ("1 file", one)):
        for name, xs in data.items():
            if name.startswith("git"):
                continue
            ref = data["git " + name.split()[1]]
            print(f"{label + ': ' + name:<44} {median(xs):>8.0f} {percentile(xs, 99):>8.0f} "
                  f"{median(ref):>8.0f} {percentile(ref, 99):>8.0f} {median(xs) / median(ref):>5.2f}")
    for phase in ("idle", "diffing"):
        xs, lags = lag[phase], lag[phase + " lag"]
        print(f"echo while {phase:<8} p50 {median(xs):6.1f} ms  p99 {percentile(xs, 99):6.1f} ms  (n={len(xs)});  "
              f"loop lag p50 {median(lags):5.1f} p99 {percentile(lags, 99):5.1f} max {max(lags, default=0):5.1f} ms")


if __name__ == "__main__":
    main()
