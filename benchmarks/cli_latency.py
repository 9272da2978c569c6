"""CLI latency: the whole `workbench` process for the everyday commands, and `keys` then
`screen` while 8 other sessions stream.

References, same run, alternating (issue 15, item 2):

- every command (`ls` with 30 sessions, `ls --json`, `screen`, `keys`, `send`, `approve`,
  `deny`, `log`, `daemon status`) against `python -c "import json, socket"` by the same
  interpreter: rounds of one reference run, one command run, ...; goal: median <= 1.5x.
  `approve` and `deny` are answered "no approval is pending" (exit 2): the same round trip
  as a real answer, without an agent to ask each time;
- `keys X` followed by `screen` (two processes) on a session running `cat`, while 8 other
  `--agent shell` sessions run `while :; do cat FILE; done` (2 MB of plain and SGR text),
  against `tmux send-keys` + `tmux capture-pane -p` on a tmux server (its own `-L` socket)
  with 8 windows streaming the same way. The two loads take turns: each side is measured
  while its own 8 streams run and the other's are stopped (Ctrl-C); goal: <= 2x. Measured
  beside it, under the same load: the daemon's share (the same two requests on one open
  connection), two bare Python starts, and two `python -c pass` in both phases (the floor
  of any CLI written in Python, under each side's load);
- `diff ID` and `diff ID --stat` of a change (modified, new and deleted files) against
  `git diff` / `git diff --stat` of the same change in a plain clone, untracked files
  included by `git add -N` beforehand (so git's side is one process; ours finds them too).

The commands run through the console script next to the interpreter (`.venv/bin/workbench`),
with the package's bytecode compiled first, as an installed workbench has it.

Run: .venv/bin/python benchmarks/cli_latency.py [--quick] [--rounds N] [--runs N]
"""

from __future__ import annotations

import compileall
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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
    make_repo,
    median,
    new_session,
    percentile,
    sandbox_ok,
    wait_for,
)
from emulator_throughput import gen_colour, gen_plain

SESSIONS = 30
STREAMS = 8
BARE = [PYTHON, "-c", "import json, socket"]
PASS = [PYTHON, "-c", "pass"]  # the interpreter's own start: the floor of any Python process
STREAM_CMD = "while :; do cat {blob}; done"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def timed(argv: list[str]) -> float:
    """Wall time of one process, ms (output discarded; its exit code is not ours to judge)."""
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def timed_pair(a: list[str], b: list[str]) -> float:
    t0 = time.perf_counter()
    for argv in (a, b):
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def alternate(cases: dict[str, Callable[[], float]], rounds: int, runs: int,
              between: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """`rounds` rounds; in each, every case `runs` times, interleaved run by run."""
    out: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for _ in range(runs):
            for name, fn in cases.items():
                out[name].append(fn())
        if between is not None:
            between()
    return out


def wb(*args: str) -> list[str]:
    return [WORKBENCH, *args]


# --- tmux ----------------------------------------------------------------------------------


class Tmux:
    """A private tmux server: STREAMS windows of bash (the load) and one running `cat`."""

    def __init__(self, root: Path, cols: int, rows: int) -> None:
        self.base = ["tmux", "-L", f"wbcli{os.getpid()}", "-f", str(root / "tmux.conf")]
        (root / "tmux.conf").write_text("set -g status off\n")
        self.run("new-session", "-d", "-s", "typed", "-x", str(cols), "-y", str(rows), "cat")
        self.run("new-session", "-d", "-s", "load", "-x", str(cols), "-y", str(rows), "bash --norc --noprofile")
        for _ in range(STREAMS - 1):
            self.run("new-window", "-t", "load", "bash --norc --noprofile")

    def run(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout

    def stream(self, cmd: str | None) -> None:
        for w in range(STREAMS):
            if cmd is None:
                self.run("send-keys", "-t", f"load:{w}", "C-c")
            else:
                self.run("send-keys", "-t", f"load:{w}", cmd, "Enter")

    def argv(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("kill-server")

    def __enter__(self) -> Tmux:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the phases ----------------------------------------------------------------------------


def commands(target: str, rounds: int, runs: int) -> dict[str, list[float]]:
    cases: dict[str, Callable[[], float]] = {
        "python": lambda: timed(BARE),
        "ls": lambda: timed(wb("ls")),
        "ls --json": lambda: timed(wb("ls", "--json")),
        "screen": lambda: timed(wb("screen", target)),
        "keys": lambda: timed(wb("keys", target, "x")),
        "send": lambda: timed(wb("send", target, "hello")),
        "approve": lambda: timed(wb("approve", target)),
        "deny": lambda: timed(wb("deny", target, "--reason", "no")),
        "log": lambda: timed(wb("log", target)),
        "daemon status": lambda: timed(wb("daemon", "status")),
    }
    return alternate(cases, rounds, runs, between=lambda: timed(wb("keys", target, r"\r")))


def under_load(d: Daemon, tmux: Tmux, streams: list[str], target: str, blob: Path, rounds: int,
               runs: int) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    cmd = STREAM_CMD.format(blob=shlex.quote(str(blob)))
    out: dict[str, list[float]] = {"workbench": [], "tmux": [], "daemon": [], "python": [], "pass": [],
                                   "tmux pass": []}
    loads: dict[str, list[str]] = {"workbench": [], "tmux": []}

    def streams_on(name: str, on: bool) -> None:
        if name == "tmux":
            tmux.stream(cmd if on else None)
            return
        for sid in streams:
            d.call("keys", id=sid, text=f"{cmd}\\r" if on else "\\x03")

    def phase(name: str) -> None:
        streams_on(name, True)
        time.sleep(1.0)  # the streams at full speed
        for _ in range(runs):
            if name == "workbench":
                out[name].append(timed_pair(wb("keys", target, "x"), wb("screen", target)))
                out["python"].append(timed_pair(BARE, BARE))  # the reference of item 2, twice
                out["pass"].append(timed_pair(PASS, PASS))  # the floor of two Python processes
                with d.client("bench-share") as c:  # the daemon's share: no process start
                    t0 = time.perf_counter()
                    c.call("keys", id=target, text="x")
                    c.call("screen", id=target)
                    out["daemon"].append((time.perf_counter() - t0) * 1000)
            else:
                out[name].append(timed_pair(tmux.argv("send-keys", "-t", "typed", "x"),
                                            tmux.argv("capture-pane", "-p", "-t", "typed")))
                out["tmux pass"].append(timed_pair(PASS, PASS))  # the same floor under tmux's load
        loads[name].append(loadavg())
        streams_on(name, False)
        d.call("keys", id=target, text="\\r")
        tmux.run("send-keys", "-t", "typed", "Enter")
        time.sleep(0.5)

    for r in range(rounds):
        for name in (("workbench", "tmux") if r % 2 == 0 else ("tmux", "workbench")):
            phase(name)
    return out, loads


def change(worktree: Path, files: int) -> None:
    """Modify half of `files` files, delete a few, add `files // 4` new ones (untracked)."""
    for i in range(files):
        f = worktree / f"d{i % 100:02d}" / f"f{i}.txt"
        if i % 10 == 9:
            f.unlink()
        elif i % 2 == 0:
            f.write_text("".join(f"line {j} of file {i}{' changed' if j % 3 == 0 else ''}\n" for j in range(25)))
    for i in range(files // 4):
        (worktree / "new" / f"n{i}.txt").parent.mkdir(exist_ok=True)
        (worktree / "new" / f"n{i}.txt").write_text("".join(f"new line {j}\n" for j in range(25)))


def diffs(d: Daemon, root: Path, repo: Path, sandbox: str, files: int, rounds: int,
          runs: int) -> dict[str, list[float]]:
    sid = new_session(d, repo, "cat", sandbox=sandbox, name="diffed")["id"]
    wait_for(lambda: d.call("get", id=sid)["alive"], 20, 0.05)
    change(Path(d.call("get", id=sid)["worktree"]), files)
    plain = root / "plain"
    git(root, "clone", "-q", str(repo), str(plain))
    change(plain, files)
    untracked = git(plain, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    git(plain, "add", "-N", "--", *filter(None, untracked))  # untracked files show in `git diff`
    git_diff = ["git", "-C", str(plain), "diff"]
    # the same bytes? (a sanity check of the comparison, not timed)
    ours = subprocess.run(wb("diff", sid, "--stat"), capture_output=True, text=True).stdout.splitlines()[-1:]
    theirs = subprocess.run([*git_diff, "--stat"], capture_output=True, text=True).stdout.splitlines()[-1:]
    print(f"diff --stat: workbench {ours}, git {theirs}", flush=True)
    cases: dict[str, Callable[[], float]] = {
        "git diff": lambda: timed(git_diff),
        "diff": lambda: timed(wb("diff", sid)),
        "git diff --stat": lambda: timed([*git_diff, "--stat"]),
        "diff --stat": lambda: timed(wb("diff", sid, "--stat")),
    }
    return alternate(cases, rounds, runs)


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--rounds", type=int, default=0, help="alternating rounds (default 10, quick 3)")
    parser.add_argument("--runs", type=int, default=0, help="runs of each case per round (default 10, quick 3)")
    parser.add_argument("--diff-files", type=int, default=0, help="files in the diffed repo (default 400)")
    parser.add_argument("--sandbox", choices=["workspace", "off", "auto"], default="auto")
    args = parser.parse_args()
    started = time.monotonic()
    rounds = args.rounds or (3 if args.quick else 10)
    runs = args.runs or (3 if args.quick else 10)
    files = args.diff_files or (80 if args.quick else 400)
    sandbox = args.sandbox if args.sandbox != "auto" else ("workspace" if sandbox_ok() else "off")
    res = Result("cli_latency", "8. CLI latency", args.quick)
    import workbench

    compileall.compile_dir(str(Path(workbench.__file__).parent), quiet=1)  # as installed
    load_at_start = loadavg()
    with isolated("cli") as root:
        inputs = root / "inputs"
        inputs.mkdir()
        blob = inputs / "stream.txt"
        blob.write_bytes(gen_plain(1_000_000) + gen_colour(1_000_000))
        cfg = root / "config" / "workbench"
        cfg.mkdir(parents=True)
        cfg.joinpath("config.toml").write_text(f'[sandbox]\nextra_ro_binds = ["{inputs}"]\n')
        repo = make_repo(root / "repo", files=files, lines=25)
        tmux_cm = Tmux(root, 80, 24) if shutil.which("tmux") else contextlib.nullcontext(None)
        with Daemon(root) as d, tmux_cm as tmux:  # tmux stops first: its processes are ours
            ids = [new_session(d, repo, "shell", sandbox=sandbox, size=(80, 24), name=f"s{i}")["id"]
                   for i in range(SESSIONS - 1)]
            target = new_session(d, repo, "cat", sandbox=sandbox, size=(80, 24), name="typed")["id"]
            wait_for(lambda: all(s["alive"] for s in d.call("ls")), 60, 0.1)
            timed(BARE)  # warm the page cache
            timed(wb("ls"))
            print(f"commands: {rounds} rounds x {runs} runs, {SESSIONS} sessions", flush=True)
            t = commands(target, rounds, runs)
            load_commands = loadavg()
            ref = t.pop("python")
            for name, xs in t.items():
                what = f"`workbench {name}`" + (f" ({SESSIONS} sessions)" if name.startswith("ls") else "")
                res.add(Row(what, median(xs), "ms", median(ref), 'python -c "import json, socket"',
                            median(xs) / median(ref), "<= 1.5 ratio",
                            detail=f"p99 {percentile(xs, 99):.1f} ms vs {percentile(ref, 99):.1f} ms"))
            res.extra["commands_ms"] = {k: [round(x, 2) for x in v] for k, v in {"python": ref, **t}.items()}
            if tmux is not None:
                print("keys + screen under load", flush=True)
                pair, loads = under_load(d, tmux, ids[:STREAMS], target, blob, rounds, runs)
                for q in (50, 99):
                    w, r = percentile(pair["workbench"], q), percentile(pair["tmux"], q)
                    res.add(Row(f"`keys` + `screen`, {STREAMS} sessions streaming, p{q}", w, "ms", r,
                                "tmux send-keys + capture-pane", w / r, "<= 2 ratio",
                                detail=f"load average {loads['workbench'][-1]} / {loads['tmux'][-1]}"))
                res.add(Row("  the daemon's share of it (one open connection, no process start)",
                            median(pair["daemon"]), "ms",
                            detail=f"p99 {percentile(pair['daemon'], 99):.1f} ms"))
                floor = median(pair["python"])
                res.add(Row("  two bare `python -c \"import json, socket\"` starts, same load", floor, "ms",
                            median(pair["tmux"]), "tmux send-keys + capture-pane", floor / median(pair["tmux"]),
                            detail=f"p99 {percentile(pair['python'], 99):.1f} ms"))
                for key, side in (("pass", "workbench's"), ("tmux pass", "tmux's")):
                    floor = median(pair[key])
                    res.add(Row(f"  two `python -c pass` starts under {side} load", floor, "ms",
                                median(pair["tmux"]), "tmux send-keys + capture-pane",
                                floor / median(pair["tmux"]),
                                detail=f"p99 {percentile(pair[key], 99):.1f} ms: the floor of any two-process "
                                       "Python CLI"))
                res.extra["under_load_ms"] = {k: [round(x, 2) for x in v] for k, v in pair.items()}
                res.extra["under_load_loadavg"] = loads
            else:
                res.notes.append("tmux is not installed: keys + screen under load not measured")
            print(f"diff of {files} files", flush=True)
            dt = diffs(d, root, repo, sandbox, files, rounds, max(1, runs // 2))
            for name in ("diff", "diff --stat"):
                xs, ref_d = dt[name], dt[f"git {name}"]
                changed = files // 2 + files // 10 + files // 4  # modified, deleted, new
                res.add(Row(f"`workbench {name}` ({changed} files changed in a {files}-file repo)",
                            median(xs), "ms", median(ref_d), f"git {name}", median(xs) / median(ref_d),
                            "<= 1.5 ratio",
                            detail=f"p99 {percentile(xs, 99):.1f} ms vs {percentile(ref_d, 99):.1f} ms"))
            res.extra["diff_ms"] = {k: [round(x, 2) for x in v] for k, v in dt.items()}
    res.extra["loadavg"] = {"start": load_at_start, "after commands": load_commands, "end": loadavg()}
    res.notes.append(f"sandbox {sandbox}; load average at start {load_at_start}, after the commands "
                     f"{load_commands}, at the end {res.extra['loadavg']['end']}")
    res.notes.append(f"{rounds} alternating rounds of {runs} runs each; p99 of all runs in the detail column")
    finish(res, started, save=not args.no_save)
    print_table(res)


def print_table(res: Result) -> None:
    print("| measurement | workbench median | reference median | ratio | p99 |")
    print("|---|---|---|---|---|")
    for r in res.rows:
        wbv = f"{r.workbench:.1f} ms" if r.workbench is not None else "n/a"
        ref = f"{r.reference:.1f} ms ({r.ref_name})" if r.reference is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        print(f"| {r.metric} | {wbv} | {ref} | {ratio} | {r.detail} |")


if __name__ == "__main__":
    main()
