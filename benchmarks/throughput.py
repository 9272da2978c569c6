"""Terminal throughput: PTY bytes -> daemon emulator -> frames a client receives.

For each input (plain text, SGR-heavy colour, a full-screen redraw stream, long wrapping
lines) at 80x24 and 200x50 the same command runs in three places:

- workbench: a session whose agent is `sh -c 'read _; cat FILE; printf MARKER'`; a client
  subscribed to its frames presses Enter (`keys`) and the clock stops when a received
  frame shows the end marker;
- tmux: the same command in a detached tmux session (history-limit = workbench's
  scrollback); `send-keys Enter`, then a control-mode client (no pane output) polls
  `capture-pane` every 5 ms until the marker is on the screen;
- raw PTY: a Python reader on a fresh PTY running `cat FILE`, until EOF (the physical limit).

Reported per case: MB/s (median of the repeats), ratio to tmux and to raw PTY.
Inputs come from emulator_throughput.py so the in-process emulator numbers are comparable.

Run: .venv/bin/python benchmarks/throughput.py [--quick] [--repeat N]
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Daemon,
    Result,
    Row,
    base_argparser,
    finish,
    isolated,
    make_repo,
    median,
    new_session,
    row_text,
    sandbox_ok,
    wait_for,
)
from emulator_throughput import gen_colour, gen_fullscreen, gen_plain, gen_wrapping

MB = 1_000_000
SIZES = [(80, 24), (200, 50)]
# Sizes the issue names (plain 50 MB, colour 20 MB); the other two are ours.
FULL = {"plain": 50 * MB, "colour": 20 * MB, "full-screen": 20 * MB, "wrapping": 20 * MB}
QUICK = {"plain": 4 * MB, "colour": 2 * MB, "full-screen": 2 * MB, "wrapping": 2 * MB}
# Printed in two pieces so the command line itself never contains it.
MARK_A, MARK_B = "__WB_BENCH", "_END__"
MARKER = MARK_A + MARK_B
SCROLLBACK = 10_000


def command(path: Path) -> str:
    return f"read _; cat {shlex.quote(str(path))}; printf '\\r\\n%s%s\\r\\n' {MARK_A} {MARK_B}"


def write_inputs(dirpath: Path, sizes: dict[str, int], cols: int, rows: int) -> dict[str, Path]:
    gens = {
        "plain": lambda n: gen_plain(n),
        "colour": lambda n: gen_colour(n),
        "full-screen": lambda n: gen_fullscreen(n, cols, rows),
        "wrapping": lambda n: gen_wrapping(n),
    }
    out: dict[str, Path] = {}
    for name, size in sizes.items():
        # Only the full-screen stream depends on the size; the others are shared.
        key = f"{name}-{cols}x{rows}" if name == "full-screen" else name
        path = dirpath / f"{key}.bin"
        if not path.exists():
            data = gens[name](size)
            assert MARKER.encode() not in data
            path.write_bytes(data)
        out[name] = path
    return out


# --- workbench ---------------------------------------------------------------------------


def run_workbench(d: Daemon, repo: Path, path: Path, cols: int, rows: int, sandbox: str) -> float:
    """Seconds from Enter to a received frame showing the marker."""
    s = new_session(d, repo, f"sh -c {shlex.quote(command(path))}", sandbox=sandbox, size=(cols, rows))
    sid = s["id"]
    try:
        with d.client("bench-frames") as c:
            # Wait for the shell to sit in `read`: its PTY exists once a screen does.
            def ready() -> bool:
                try:
                    c.call("screen", id=sid)
                    return True
                except Exception:
                    return False

            if not wait_for(ready, 10):
                raise RuntimeError(f"session {sid} did not start")
            time.sleep(0.05)
            c.call("subscribe", ids=[sid], frames=True)
            c.events.clear()
            t0 = time.perf_counter()
            c.call("keys", id=sid, data="\r")
            while True:
                ev = c.next_event(timeout=120)
                if ev is None:
                    raise RuntimeError("no frame with the end marker within 120 s")
                if ev.get("event") != "frame":
                    continue
                data: dict[str, Any] = ev["data"]
                if data.get("session") != sid:
                    continue
                if any(MARKER in row_text(r) for r in data["rows"].values()):
                    return time.perf_counter() - t0
    finally:
        with contextlib.suppress(Exception):
            d.call("rm", id=sid)


# --- tmux --------------------------------------------------------------------------------


class Tmux:
    def __init__(self, root: Path) -> None:
        self.sock = f"wbbench{os.getpid()}"
        self.conf = root / "tmux.conf"
        self.conf.write_text(f"set -g history-limit {SCROLLBACK}\nset -g status off\n")
        self.base = ["tmux", "-L", self.sock, "-f", str(self.conf)]
        self.ctl: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> str:
        return subprocess.run(
            [*self.base, *args], check=True, capture_output=True, text=True
        ).stdout

    def capture(self) -> bytes:
        assert self.ctl is not None and self.ctl.stdin and self.ctl.stdout
        self.ctl.stdin.write(b"capture-pane -p -t bench\n")
        self.ctl.stdin.flush()
        lines: list[bytes] = []
        while True:
            line = self.ctl.stdout.readline()
            if not line:
                raise RuntimeError("tmux control client exited")
            if line.startswith(b"%begin"):
                lines = []
            elif line.startswith((b"%end", b"%error")):
                return b"".join(lines)
            else:
                lines.append(line)

    def measure(self, path: Path, cols: int, rows: int) -> float:
        self.run(
            "new-session", "-d", "-s", "bench", "-x", str(cols), "-y", str(rows),
            f"sh -c {shlex.quote(command(path))}; sleep 600",
        )
        try:
            self.ctl = subprocess.Popen(
                [*self.base, "-C", "attach", "-t", "bench", "-f", "no-output,ignore-size"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            self.capture()
            time.sleep(0.05)
            t0 = time.perf_counter()
            self.run("send-keys", "-t", "bench", "Enter")
            while MARKER.encode() not in self.capture():
                time.sleep(0.005)
            return time.perf_counter() - t0
        finally:
            if self.ctl is not None:
                assert self.ctl.stdin is not None
                with contextlib.suppress(OSError):
                    self.ctl.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.ctl.wait(5)
                if self.ctl.poll() is None:
                    self.ctl.kill()
                    self.ctl.wait()
                self.ctl = None
            with contextlib.suppress(subprocess.CalledProcessError):
                self.run("kill-session", "-t", "bench")

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


# --- raw PTY -----------------------------------------------------------------------------


def run_raw(path: Path, cols: int, rows: int) -> float:
    """Seconds for a Python reader to drain `cat FILE` through a fresh PTY."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(["cat", str(path)], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        while True:
            try:
                if not os.read(master, 65536):
                    break
            except OSError as e:
                if e.errno == errno.EIO:
                    break
                raise
        return time.perf_counter() - t0
    finally:
        os.close(master)
        proc.wait()


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--repeat", type=int, default=0, help="runs per case (median kept)")
    parser.add_argument("--sandbox", choices=["workspace", "off", "auto"], default="auto")
    parser.add_argument("--only", default="", help="comma-separated input names")
    args = parser.parse_args()
    started = time.monotonic()
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = QUICK if args.quick else FULL
    if args.only:
        sizes = {k: v for k, v in sizes.items() if k in args.only.split(",")}
    sandbox = args.sandbox if args.sandbox != "auto" else ("workspace" if sandbox_ok() else "off")
    res = Result("throughput", "1. Terminal throughput", args.quick)
    res.notes.append(
        f"sessions run with sandbox={sandbox}; each number is the median of {repeat} run(s), "
        "timed from Enter to the end marker on the client's (or tmux's) screen"
    )
    with isolated("throughput") as root:
        inputs_dir = root / "inputs"
        inputs_dir.mkdir()
        cfg = root / "config" / "workbench"
        cfg.mkdir(parents=True)
        cfg.joinpath("config.toml").write_text(
            f'[sandbox]\nextra_ro_binds = ["{inputs_dir}"]\n'
            f"[session]\nscrollback_lines = {SCROLLBACK}\n"
        )
        repo = make_repo(root / "repo")
        tmux = Tmux(root)
        try:
            with Daemon(root) as d:
                for cols, rows in SIZES:
                    files = write_inputs(inputs_dir, sizes, cols, rows)
                    for name, path in files.items():
                        mb = path.stat().st_size / MB
                        wb_t, tm_t, raw_t = [], [], []
                        for _ in range(repeat):
                            raw_t.append(run_raw(path, cols, rows))
                            tm_t.append(tmux.measure(path, cols, rows))
                            wb_t.append(run_workbench(d, repo, path, cols, rows, sandbox))
                        wb, tm, raw = mb / median(wb_t), mb / median(tm_t), mb / median(raw_t)
                        case = f"{name} {mb:.0f} MB {cols}x{rows}"
                        res.add(Row(f"{case} vs tmux", wb, "MB/s", tm, "tmux", wb / tm,
                                    ">= 1.0 ratio"))
                        res.add(Row(f"{case} vs raw PTY", wb, "MB/s", raw, "raw PTY", wb / raw,
                                    ">= 0.33 ratio"))
                        print(f"  {case}: workbench {wb:.0f} MB/s, tmux {tm:.0f}, raw {raw:.0f}",
                              flush=True)
        finally:
            tmux.close()
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
