"""Start-up: `workbench ls` with a running daemon, and the UI's first frame.

Reference, same run: `python -c "import textual"` (the floor for any Textual program).

- `workbench ls`: the whole CLI process, wall time, with the daemon already up and 4
  sessions to list.
- UI first frame: `workbench` with no arguments in a fresh 120x40 PTY; its output goes
  through our own terminal emulator and the clock stops when the screen shows the UI
  (at least 3 non-blank rows). The process is then terminated.

Run: .venv/bin/python benchmarks/startup.py [--quick] [--repeat N]
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
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
    isolated,
    make_repo,
    median,
)


def timed_run(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def ui_available() -> str:
    """'' when the UI can start, else why not."""
    try:
        import workbench.ui.app  # noqa: F401
    except Exception as e:
        return f"workbench.ui.app does not import ({type(e).__name__}: {e})"
    return ""


def ui_first_frame(cols: int = 120, rows: int = 40, timeout: float = 20) -> float:
    from workbench.core.screen import TerminalScreen

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([WORKBENCH], stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    elapsed: float | None = None
    try:
        with TerminalScreen(cols, rows) as screen:
            deadline = t0 + timeout
            while time.perf_counter() < deadline:
                ready, _, _ = select.select([master], [], [], 0.05)
                if ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError as e:
                        if e.errno != errno.EIO:
                            raise
                        data = b""
                    if not data:
                        break
                    screen.feed(data)
                    reply = screen.take_replies()
                    if reply:
                        os.write(master, reply)
                    if sum(1 for line in screen.lines() if line.strip()) >= 3:
                        elapsed = time.perf_counter() - t0
                        break
            if elapsed is None:
                tail = "\n".join(line for line in screen.lines() if line.strip())[-500:]
                raise RuntimeError(f"the UI showed no frame within {timeout:.0f} s: {tail!r}")
        return elapsed
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--repeat", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    repeat = args.repeat or (3 if args.quick else 10)
    res = Result("startup", "6. Start-up", args.quick)
    with isolated("startup") as root:
        repo = make_repo(root / "repo")
        with Daemon(root) as d:
            for i in range(4):
                d.call("new", repo=str(repo), agent="shell", sandbox="off", name=f"s{i}")
            timed_run([PYTHON, "-c", "import textual"])  # warm the page cache
            timed_run([WORKBENCH, "ls"])
            ref = [timed_run([PYTHON, "-c", "import textual"]) for _ in range(repeat)]
            ls = [timed_run([WORKBENCH, "ls"]) for _ in range(repeat)]
            r = median(ref) * 1000
            res.add(Row("`workbench ls` (daemon running, 4 sessions)", median(ls) * 1000, "ms", r,
                        'python -c "import textual"', median(ls) * 1000 / r, "< 300"))
            why = ui_available()
            if why:
                res.add(Row("UI first frame", None, "ms", r, 'python -c "import textual"',
                            goal="< 1000", detail="not available yet"))
                res.notes.append(f"UI first frame: not available yet: {why}")
                print(f"UI first frame: not available yet: {why}")
            else:
                ui_first_frame()  # warm
                ui = [ui_first_frame() for _ in range(max(3, repeat // 2))]
                res.add(Row("UI first frame (`workbench`, 120x40 PTY)", median(ui) * 1000, "ms",
                            r, 'python -c "import textual"', median(ui) * 1000 / r, "< 1000"))
                res.extra["ui_ms"] = [round(x * 1000, 1) for x in ui]
            res.extra.update(ls_ms=[round(x * 1000, 1) for x in ls],
                             textual_ms=[round(x * 1000, 1) for x in ref])
    res.notes.append(f"median of {repeat} runs; wall time of the whole process")
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
