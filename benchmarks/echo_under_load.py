"""Key echo through the UI while 8 other sessions stream, against tmux in the same run.

Workbench phase: 8 sessions run `while :; do cat FILE; done` (FILE: 1 MB of plain and
SGR-heavy text) and a ninth runs `cat`; the UI (`workbench attach NINTH`) runs in a
160x45 PTY this script owns. One character at a time is typed into that PTY (10-40 ms
apart) and the clock stops when the character shows on the UI's screen (the UI's output,
parsed by a terminal emulator here): what a person at that terminal waits for.

Reference phase: a tmux server (own socket) with 9 windows, 8 of them streaming the same
way in the background and the active one running `cat`, a tmux client attached in a PTY
of the same size, the same typing and the same measurement.

Phases alternate (each starts its streams afresh and stops them after), >= 3 rounds; the
result is p50/p99 of all keys of each side, their ratios and the load average.

Run: .venv/bin/python benchmarks/echo_under_load.py [--quick] [--keys N] [--rounds N] [--trace]

With --trace, the UI and the daemon record when each key passes each stage
(`workbench.core.echo_trace`) and the notes get a table of the time spent between stages.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import os
import random
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    PYTHON,
    Daemon,
    Result,
    Row,
    base_argparser,
    finish,
    isolated,
    make_repo,
    new_session,
    percentile,
    wait_for,
)
from emulator_throughput import gen_colour, gen_plain

from workbench.core import echo_trace
from workbench.core.echo_trace import mark
from workbench.core.screen import TerminalScreen

STREAMS = 8
COLS, ROWS = 160, 45
LINE = 24  # timed characters per line, after a 4-character line tag
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class Term:
    """A program in a PTY owned by this process, its output parsed by an emulator."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.screen = TerminalScreen(COLS, ROWS)
        self.spy: subprocess.Popen[bytes] | None = None

    def profile(self, name: str) -> None:
        """With WB_BENCH_PROFILE=DIR, record this program with py-spy too (see benchlib)."""
        target = os.environ.get("WB_BENCH_PROFILE")
        spy = Path(PYTHON).with_name("py-spy")
        if target and spy.exists():
            out = Path(target) / f"echo_under_load-{name}-{self.proc.pid}.txt"
            self.spy = subprocess.Popen([str(spy), "record", "-p", str(self.proc.pid), "-o", str(out),
                                         "-f", "raw", "-r", "250"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pump(self, timeout: float) -> bytes:
        """Read what is there (waiting up to `timeout` for the first bytes) into the screen."""
        got = b""
        ready, _, _ = select.select([self.master], [], [], timeout)
        while ready:
            try:
                data = os.read(self.master, 65536)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                raise RuntimeError("the program in the PTY exited")
            self.screen.feed(data)
            got += data
            reply = self.screen.take_replies()
            if reply:
                os.write(self.master, reply)
            ready, _, _ = select.select([self.master], [], [], 0)
        return got

    def shows(self, text: str) -> bool:
        return any(text in line for line in self.screen.lines())

    def wait_shows(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.shows(text):
            left = deadline - time.monotonic()
            if left <= 0:
                tail = "\n".join(ln for ln in self.screen.lines() if ln.strip())[-800:]
                raise RuntimeError(f"{text!r} not on screen within {timeout:.0f} s:\n{tail}")
            self.pump(min(left, 0.1))

    def idle(self, seconds: float) -> None:
        """Keep reading (a terminal that is not read blocks its program) for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(left)

    def ready(self, timeout: float = 60) -> None:
        """Wait until typed keys reach the program: '#' (no UI binding) until it echoes.
        Keys typed while the UI still starts would go to its key bindings instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.write(self.master, b"#")
            with contextlib.suppress(RuntimeError):
                self.wait_shows("#", 2)
                os.write(self.master, b"\r")
                self.idle(0.5)
                return
        raise RuntimeError(f"typed keys did not reach the program within {timeout:.0f} s")

    def type(self, keys: int, rng: random.Random) -> list[float]:
        """Type `keys` timed characters; each waits for its own echo on the screen."""
        gc.collect()
        gc.disable()  # a collection here would be counted as the echo's latency
        try:
            return self._type(keys, rng)
        finally:
            gc.enable()

    def _type(self, keys: int, rng: random.Random) -> list[float]:
        latencies: list[float] = []
        line = 0
        while len(latencies) < keys:
            line += 1
            # A unique tag starts every line, so a typed prefix is found on one row only.
            typed = f"{rng.randrange(10**3):03d}{'QWXYZ'[line % 5]}"
            os.write(self.master, typed.encode())
            self.wait_shows(typed, 20)
            for _ in range(min(LINE, keys - len(latencies))):
                self.idle(rng.uniform(0.01, 0.04))
                ch = rng.choice(ALPHABET)
                expect = typed + ch
                t0 = time.perf_counter()
                mark("typed")
                os.write(self.master, ch.encode())
                deadline = t0 + 20
                while True:
                    data = self.pump(max(0.0, deadline - time.perf_counter()))
                    if ch.encode() in data and self.shows(expect):
                        break
                    if time.perf_counter() > deadline:
                        rows = self.screen.lines()
                        raise RuntimeError(f"no echo of {expect!r} within 20 s:\n" + "\n".join(rows))
                mark("seen")
                latencies.append((time.perf_counter() - t0) * 1000)
                typed = expect
            os.write(self.master, b"\r")
            # `cat` prints the line back: wait for it, or it lands after the next tag.
            deadline = time.monotonic() + 20
            while sum(typed in line for line in self.screen.lines()) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"`cat` did not print {typed!r} back within 20 s")
                self.pump(0.05)
            self.idle(0.05)
        return latencies

    def close(self) -> None:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.spy.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
        self.screen.close()


def term_env() -> dict[str, str]:
    return {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}


def workbench_phase(d: Daemon, root: Path, repo: Path, stream: str, keys: int,
                    rng: random.Random) -> list[float]:
    ids: list[str] = []
    ui: Term | None = None
    try:
        for i in range(STREAMS):
            ids.append(new_session(d, repo, f"sh -c {shlex.quote(stream)}", sandbox="off",
                                   size=(COLS, ROWS - 1), name=f"s{i}")["id"])
        target = new_session(d, repo, "cat", sandbox="off", size=(COLS, ROWS - 1), name="typed")["id"]
        ids.append(target)
        wait_for(lambda: all(s["alive"] for s in d.call("ls")), 20, 0.05)
        # Its own layout file: one saved by the previous phase's UI would be restored.
        state = root / f"ui-state-{time.monotonic_ns()}"
        state.mkdir()
        ui = Term([PYTHON, "-m", "workbench", "attach", target], {**term_env(), "XDG_STATE_HOME": str(state)})
        ui.profile("ui")
        ui.wait_shows("typed", 60)
        ui.ready()
        ui.idle(1.0)  # the streams reach full speed
        return ui.type(keys, rng)
    finally:
        if ui is not None:
            ui.close()
        for sid in ids:
            with contextlib.suppress(Exception):
                d.call("rm", id=sid)


def tmux_phase(root: Path, stream: str, keys: int, rng: random.Random) -> list[float]:
    # A socket of its own per phase: a killed server may still hold the last one.
    sock = str(root / f"tmux-{time.monotonic_ns()}.sock")

    def tmux(*args: str) -> None:
        out = subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {out.stderr.strip()}")

    client: Term | None = None
    try:
        tmux("new-session", "-d", "-s", "bench", "-x", str(COLS), "-y", str(ROWS), "cat")
        for _ in range(STREAMS):
            tmux("new-window", "-d", "-t", "bench", f"sh -c {shlex.quote(stream)}")
        client = Term(["tmux", "-S", sock, "-f", "/dev/null", "attach", "-t", "bench"], term_env())
        client.ready()
        client.idle(1.0)
        return client.type(keys, rng)
    finally:
        if client is not None:
            client.close()
        with contextlib.suppress(RuntimeError):
            tmux("kill-server")


# A keystroke's way, in order: typed into the UI's PTY (this script), read by the UI, sent,
# written to the session's PTY by the daemon, its echo parsed in a feeder thread, followed up
# on the daemon's loop, sent as a frame, received and applied by the UI, seen here.
STAGES = ["typed", "ui.key", "ui.sending", "daemon.written", "daemon.parsing", "daemon.loop",
          "daemon.frame", "ui.frame", "ui.applying", "ui.painted", "seen"]


def trace_table(directory: Path) -> list[str]:
    """Per stage, p50/p90/p99 of the time since the previous one, over the keys whose every
    stage was recorded between their `typed` and `seen` (the workbench phases)."""
    events: list[tuple[float, str]] = []
    for log in directory.glob("*.log"):
        for line in log.read_text().splitlines():
            stage, _, at = line.partition(" ")
            events.append((float(at), stage))
    events.sort()
    keys: list[list[float]] = []
    for i, (t0, stage) in enumerate(events):
        if stage != "typed":
            continue
        chain, j = [t0], i + 1
        for want in STAGES[1:]:
            while j < len(events) and events[j][1] != want and events[j][1] not in ("typed", "seen"):
                j += 1
            if j >= len(events) or events[j][1] != want:
                break
            chain.append(events[j][0])
            j += 1
        if len(chain) == len(STAGES):
            keys.append(chain)
    lines = [f"trace of {len(keys)} keys: stage (time since the previous stage) p50 / p90 / p99 ms"]
    for k in range(1, len(STAGES)):
        xs = [(c[k] - c[k - 1]) * 1000 for c in keys]
        if xs:
            lines.append(f"  {STAGES[k - 1]} -> {STAGES[k]}: {percentile(xs, 50):.2f} / "
                         f"{percentile(xs, 90):.2f} / {percentile(xs, 99):.2f}")
    # Where the slowest keys lost their time: the stage that took longest in each.
    slow = sorted(keys, key=lambda c: c[-1] - c[0])[-max(3, len(keys) // 20):]
    worst: dict[str, list[float]] = {}
    for c in slow:
        k = max(range(1, len(STAGES)), key=lambda k: c[k] - c[k - 1])
        worst.setdefault(f"{STAGES[k - 1]} -> {STAGES[k]}", []).append((c[k] - c[k - 1]) * 1000)
    if slow:
        lines.append(f"  slowest {len(slow)} keys (from {(slow[0][-1] - slow[0][0]) * 1000:.1f} ms), "
                     "their longest stage: " + ", ".join(
                         f"{name} x{len(ms)} (median {percentile(ms, 50):.1f} ms)"
                         for name, ms in sorted(worst.items(), key=lambda kv: -len(kv[1]))))
    return lines


def summary(xs: list[float]) -> str:
    return f"p50 {percentile(xs, 50):.1f} ms, p99 {percentile(xs, 99):.1f} ms, n={len(xs)}"


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--keys", type=int, default=0, help="timed keystrokes per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["workbench", "tmux"], default=None,
                        help="one side only (for profiling)")
    parser.add_argument("--idle", action="store_true", help="the 8 other sessions idle (diagnosis)")
    parser.add_argument("--trace", action="store_true",
                        help="time each stage of the echo in the UI and the daemon (diagnosis)")
    args = parser.parse_args()
    started = time.monotonic()
    keys = args.keys or (60 if args.quick else 200)
    res = Result("echo_under_load", "Key echo through the UI, 8 sessions streaming, vs tmux",
                 args.quick)
    wb: list[float] = []
    ref: list[float] = []
    loads: list[float] = []
    with isolated("echo") as root:
        blob = root / "mix.bin"
        blob.write_bytes(gen_plain(500_000) + gen_colour(500_000))
        stream = "cat" if args.idle else f"while :; do cat {blob}; done"
        repo = make_repo(root / "repo")
        rng = random.Random(11)
        if args.trace:
            (root / "trace").mkdir()
            echo_trace.enable(str(root / "trace"))
        with Daemon(root) as d:
            phases: list[tuple[str, Callable[[], list[float]]]] = [
                ("workbench", lambda: workbench_phase(d, root, repo, stream, keys, rng)),
                ("tmux", lambda: tmux_phase(root, stream, keys, rng)),
            ]
            for rnd in range(args.rounds):
                for name, run in phases if rnd % 2 == 0 else phases[::-1]:
                    if args.only and name != args.only:
                        continue
                    loads.append(os.getloadavg()[0])
                    xs = run()
                    (wb if name == "workbench" else ref).extend(xs)
                    print(f"round {rnd + 1} {name}: {summary(xs)}, load {loads[-1]:.2f}", flush=True)
        if args.trace:
            res.notes += trace_table(root / "trace")
    for q in (50, 99):
        w, r = percentile(wb, q), percentile(ref, q)
        ratio = w / r if wb and ref and r else None
        res.add(Row(f"key echo p{q} through the UI, 8 sessions streaming", w if wb else None, "ms",
                    r if ref else None, "tmux client", ratio, "<= 2.0 ratio"))
    res.notes.append(
        f"{keys} timed keys per phase x {args.rounds} rounds, 10-40 ms apart, {COLS}x{ROWS} "
        f"PTY; streams loop over 0.5 MB plain + 0.5 MB SGR-heavy text; sandbox off; "
        f"load average at phase starts {min(loads):.2f}-{max(loads):.2f}"
    )
    res.extra = {"workbench_ms": [round(x, 2) for x in wb], "tmux_ms": [round(x, 2) for x in ref],
                 "load": loads}
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
