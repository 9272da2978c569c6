"""Memory: a session with its processes against tmux + the same shell, and a long soak.

Per session: N `--agent shell` sessions (bash -i, sandbox `workspace` when bubblewrap
works) against a tmux server with N windows of the same `bash -i`, both at 120x40. The
cost of one session is (sum of PSS of the daemon and every process below it with N
sessions - the same with 1 session) / (N - 1); tmux's is the same sum over its server and
its shells. PSS (proportional set size, /proc/PID/smaps_rollup) splits shared pages
between the processes that map them, so a shared library is not counted N times. Each
reading is taken 35 s after the last session or window started (what a quiet session
keeps once the daemon's upkeep has run; before 2026-12-07 it was 1.5 s, which read the
daemon before it had read the shells' first screens). Phases alternate (workbench, tmux,
workbench, ...), at least 3 rounds.

Soak: a fresh daemon with N sessions gives the reference RSS; then scripted mixed use for
`--soak-minutes` (each step one of: a session streams 20,000 lines, a session writes a
file of `--diff-lines` lines (2,000) and its diff is taken, a session is removed and a new
one created, `ls`, `screen`),
keeping N sessions alive; the daemon's RSS is sampled every minute (or 12 times). Goal: the
RSS at the end within 20% of the fresh daemon's, both read after 40 s without requests.
The end is also compared with the same fresh daemon once one step of each kind has run
(what the first diff, stream and replace load once: modules, caches), both shown. The
steps stay the same size from the first minute to the last, so what grows is the daemon;
`--diff-lines 0` makes step k write 100 + k lines (the default before 2026-12-08), a
workload that itself grows (12,000-line files after an hour).

Run: .venv/bin/python benchmarks/memory.py [--quick] [--sessions N] [--soak-minutes M]
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Daemon,
    Result,
    Row,
    base_argparser,
    descendants,
    finish,
    isolated,
    make_repo,
    median,
    new_session,
    rss_kb,
    sandbox_ok,
)

# Both RSS readings are taken after this long without requests: what the daemon keeps, not
# what a stream or a diff in flight holds for a moment (the daemon trims every 30 s).
QUIET_S = 40
DIFF_LINES = 2000  # each soak diff step's file


def pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def tree_pss_kb(pid: int) -> int:
    return sum(pss_kb(p) for p in (pid, *descendants(pid)))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def split_pss_kb(daemon: int) -> dict[str, int]:
    """The daemon's own PSS, its sandboxes' (bwrap) and the rest (the sessions' programs)."""
    out = {"daemon": pss_kb(daemon), "sandbox": 0, "programs": 0}
    for p in descendants(daemon):
        out["sandbox" if _comm(p) == "bwrap" else "programs"] += pss_kb(p)
    return out


# What a started, quiet session keeps: its shell has printed its prompt, and the daemon's
# sweep (every 5 s, for screens 2 s without output) has freed the copy of the cells that
# reading the prompt left. tmux's side waits as long.
SETTLE_S = 35.0


def settle() -> None:
    """Let shells finish starting, and the daemon settle, before reading memory."""
    time.sleep(SETTLE_S)


def workbench_phase(d: Daemon, repo: Path, n: int, sandbox: str) -> tuple[dict[str, int], dict[str, int]]:
    """(PSS split with 1 session, with n sessions) in KB; the sessions are removed after."""
    ids = [new_session(d, repo, "shell", sandbox=sandbox, size=(120, 40))["id"]]
    settle()
    one = split_pss_kb(d.pid)
    ids += [new_session(d, repo, "shell", sandbox=sandbox, size=(120, 40))["id"] for _ in range(n - 1)]
    settle()
    many = split_pss_kb(d.pid)
    for sid in ids:
        d.call("rm", id=sid)
    return one, many


def tmux_phase(root: Path, n: int) -> tuple[int, int]:
    sock = f"wb-mem-{os.getpid()}"
    base = ["tmux", "-L", sock, "-f", "/dev/null"]
    env = {**os.environ, "TMUX": ""}
    subprocess.run([*base, "new-session", "-d", "-x", "120", "-y", "40", "bash", "-i"],
                   check=True, env=env, cwd=root)
    try:
        server = int(subprocess.run([*base, "display", "-p", "#{pid}"], check=True, env=env,
                                    capture_output=True, text=True).stdout.strip())
        settle()
        one = tree_pss_kb(server)
        for _ in range(n - 1):
            subprocess.run([*base, "new-window", "-d", "bash", "-i"], check=True, env=env, cwd=root)
        settle()
        return one, tree_pss_kb(server)
    finally:
        subprocess.run([*base, "kill-server"], env=env, capture_output=True)


def per_session(res: Result, root: Path, repo: Path, n: int, rounds: int, sandbox: str) -> None:
    parts: dict[str, list[float]] = {"daemon": [], "sandbox": [], "programs": []}
    wb: list[float] = []
    ref: list[float] = []
    with Daemon(root) as d:
        for _ in range(rounds):
            one, many = workbench_phase(d, repo, n, sandbox)
            for k in parts:
                parts[k].append((many[k] - one[k]) / (n - 1))
            wb.append(sum(many.values()) - sum(one.values()))
            wb[-1] /= n - 1
            t_one, t_many = tmux_phase(root, n)
            ref.append((t_many - t_one) / (n - 1))
    w, r = median(wb) / 1024, median(ref) / 1024
    res.add(Row(f"memory per session incl. its processes (PSS, {n} sessions)", w, "MB", r,
                "tmux window + bash", ratio=w / r if r else None, goal="ratio <= 1.5"))
    no_sandbox = w - median(parts["sandbox"]) / 1024
    res.add(Row("the same without the sandbox's own processes (bwrap)", no_sandbox, "MB", r,
                "tmux window + bash", ratio=no_sandbox / r if r else None, goal="ratio <= 1.5"))
    for k, label in (("daemon", "the daemon's share"), ("sandbox", "bubblewrap processes"),
                     ("programs", "the session's shell")):
        res.add(Row(f"  per session: {label}", median(parts[k]) / 1024, "MB"))
    res.extra["per_session_kb"] = {"workbench": wb, "tmux": ref, "parts": parts}


# --- soak ---------------------------------------------------------------------------------


def _stream(d: Daemon, sid: str) -> None:
    d.call("keys", id=sid, data="seq 1 20000\r")


def _diff(d: Daemon, sid: str, k: int, fixed_lines: int = DIFF_LINES) -> None:
    d.call("keys", id=sid, data=f"seq 1 {fixed_lines or 100 + k} > soak-{k}.txt\r")
    time.sleep(0.3)
    d.call("diff", id=sid)


def soak(res: Result, root: Path, repo: Path, n: int, minutes: float, sandbox: str,
         fixed_lines: int = DIFF_LINES) -> None:
    rng = random.Random(7)
    samples: list[tuple[float, int]] = []
    with Daemon(root) as d:
        ids = [new_session(d, repo, "shell", sandbox=sandbox, size=(120, 40))["id"] for _ in range(n)]
        time.sleep(QUIET_S)
        fresh = rss_kb(d.pid)
        # The same daemon once each kind of step has run one time: the modules and caches
        # the first stream, diff and replace load, which a longer run does not add to.
        _diff(d, ids[0], 0)
        _stream(d, ids[1])
        d.call("rm", id=ids[2])
        ids[2] = new_session(d, repo, "shell", sandbox=sandbox, size=(120, 40))["id"]
        d.call("ls")
        d.call("screen", id=ids[3])
        time.sleep(QUIET_S)
        warmed = rss_kb(d.pid)
        start = time.monotonic()
        next_sample = start
        every = min(60.0, max(5.0, minutes * 60 / 12))
        steps = {"stream": 0, "diff": 0, "replace": 0, "ls": 0, "screen": 0}
        k = 0
        while time.monotonic() - start < minutes * 60:
            k += 1
            sid = rng.choice(ids)
            kind = rng.choice(list(steps))
            steps[kind] += 1
            if kind == "stream":
                _stream(d, sid)
            elif kind == "diff":
                _diff(d, sid, k, fixed_lines)
            elif kind == "replace":
                d.call("rm", id=sid)
                ids.remove(sid)
                ids.append(new_session(d, repo, "shell", sandbox=sandbox, size=(120, 40))["id"])
            elif kind == "ls":
                d.call("ls")
            else:
                d.call("screen", id=sid)
            time.sleep(0.2)
            if time.monotonic() >= next_sample:
                samples.append((time.monotonic() - start, rss_kb(d.pid)))
                next_sample += every
        time.sleep(QUIET_S)  # the last streams finish, the daemon's upkeep runs
        end = rss_kb(d.pid)
    res.add(Row(f"daemon RSS after {minutes:g} min of mixed use, {n} sessions alive", end / 1024, "MB",
                fresh / 1024, f"fresh daemon, same {n} sessions", ratio=end / fresh,
                goal="ratio <= 1.2"))
    res.add(Row(f"daemon RSS after {minutes:g} min of mixed use, against the fresh daemon after one step of "
                "each kind", end / 1024, "MB", warmed / 1024, "fresh daemon, each step run once",
                ratio=end / warmed, goal="ratio <= 1.2"))
    res.notes.append(f"soak steps: {steps}; RSS samples (s, MB): "
                     + ", ".join(f"{t:.0f}:{kb / 1024:.1f}" for t, kb in samples))
    res.extra["soak"] = {"fresh_kb": fresh, "warmed_kb": warmed, "end_kb": end, "samples": samples, "steps": steps}


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--sessions", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--soak-minutes", type=float, default=-1,
                        help="minutes of mixed use (default 120; 1 with --quick; 0 skips)")
    parser.add_argument("--diff-lines", type=int, default=DIFF_LINES,
                        help=f"lines of the file each soak diff step writes (default {DIFF_LINES}; "
                             "0: 100 + the step's number)")
    args = parser.parse_args()
    started = time.monotonic()
    n = args.sessions or (8 if args.quick else 30)
    minutes = args.soak_minutes if args.soak_minutes >= 0 else (1 if args.quick else 120)
    res = Result("memory", "11. Memory", args.quick)
    sandbox = "workspace" if sandbox_ok() else "off"
    load = os.getloadavg()
    with isolated("memory") as root:
        repo = make_repo(root / "repo", files=100)
        if args.rounds > 0:
            per_session(res, root, repo, n, args.rounds, sandbox)
        if minutes > 0:
            soak(res, root, repo, n, minutes, sandbox, args.diff_lines)
    res.notes.append(f"sandbox={sandbox}; diff step's file: "
                     f"{args.diff_lines or '100 + step'} lines; {args.rounds} alternating rounds for the per-session "
                     f"cost; load before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
