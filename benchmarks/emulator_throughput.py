"""Terminal emulator throughput: how fast `TerminalScreen` eats PTY output.

Feeds generated streams in 4 KB chunks (what a PTY read returns) and reports MB/s for:

- feed only;
- feed + `dirty_rows()` whenever 16 ms of wall time has passed (the daemon's 60 fps
  frame coalescing);
- feed + `dirty_rows()` after every chunk (worst case: the read path's full cost);

plus the cost of one full-screen read (`frame()` after every row changed).

The functions are importable so other benchmarks (e.g. a tmux comparison) can reuse the
same inputs and harness:

    from benchmarks.emulator_throughput import make_inputs, bench_screen

Run: .venv/bin/python benchmarks/emulator_throughput.py [--mb 4] [--sizes 80x24,200x50]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from workbench.core.screen import TerminalScreen

CHUNK = 4096
FRAME_INTERVAL = 0.016

_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "error",
    "warning",
    "info",
    "debug",
    "request",
    "response",
    "compile",
    "test",
    "passed",
    "failed",
    "module",
    "function",
    "return",
    "value",
    "index",
    "buffer",
    "socket",
    "thread",
]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def gen_plain(size: int, seed: int = 1) -> bytes:
    """Log-like plain text lines of varying length."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < size:
        line = f"{total:08d} {_words(rng, rng.randint(2, 14))}\r\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()


def _sgr(rng: random.Random) -> str:
    kind = rng.random()
    attrs = rng.choice(["", "1;", "3;", "4;", "1;4;", "7;"])
    if kind < 0.4:
        return f"\x1b[{attrs}{rng.randint(30, 37)}m"
    if kind < 0.75:
        return f"\x1b[{attrs}38;5;{rng.randint(0, 255)};48;5;{rng.randint(0, 255)}m"
    r, g, b = (rng.randint(0, 255) for _ in range(3))
    return f"\x1b[{attrs}38;2;{r};{g};{b}m"


def gen_colour(size: int, seed: int = 2) -> bytes:
    """SGR-heavy output: every word in its own colour (ls --color, compilers, rich)."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < size:
        parts = [f"{_sgr(rng)}{rng.choice(_WORDS)}" for _ in range(rng.randint(3, 12))]
        line = " ".join(parts) + "\x1b[0m\r\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()


def gen_fullscreen(size: int, cols: int = 80, rows: int = 24, seed: int = 3) -> bytes:
    """A top/vim-like app on the alternate screen redrawing every row of every frame."""
    rng = random.Random(seed)
    out: list[str] = ["\x1b[?1049h\x1b[?25l"]
    total = 0
    frame = 0
    while total < size:
        parts = [f"\x1b[H\x1b[7m top - frame {frame:6d} \x1b[K\x1b[0m"]
        for y in range(2, rows + 1):
            pid = rng.randint(1, 99999)
            cpu = rng.random() * 100
            colour = "\x1b[1;31m" if cpu > 80 else "\x1b[32m" if cpu < 10 else ""
            text = f"{pid:>7} user  {cpu:5.1f} {colour}{_words(rng, 4)}\x1b[0m"
            parts.append(f"\x1b[{y};1H{text[: cols + 20]}\x1b[K")
        chunk = "".join(parts)
        out.append(chunk)
        total += len(chunk)
        frame += 1
    out.append("\x1b[?25h\x1b[?1049l")
    return "".join(out).encode()


def gen_wrapping(size: int, seed: int = 4) -> bytes:
    """Very long lines that wrap many times (minified JSON, base64 blobs)."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < size:
        line = _words(rng, rng.randint(200, 1500)) + "\r\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()


def make_inputs(size: int = 4 << 20, cols: int = 80, rows: int = 24) -> dict[str, bytes]:
    return {
        "plain": gen_plain(size),
        "colour": gen_colour(size),
        "full-screen": gen_fullscreen(size, cols, rows),
        "wrapping": gen_wrapping(size),
    }


def chunks(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@dataclass
class Result:
    feed_mbs: float
    frames_mbs: float
    every_chunk_mbs: float
    frames: int
    full_frame_ms: float


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def bench_screen(data: bytes, cols: int, rows: int, repeat: int = 3) -> Result:
    """Measure one input at one size: best of `repeat` runs, each on a fresh emulator."""
    pieces = list(chunks(data))
    mb = len(data) / 1e6

    def feed_only() -> int:
        with TerminalScreen(cols, rows) as s:
            for p in pieces:
                s.feed(p)
            s.dirty_rows()
        return 1

    def feed_frames() -> int:
        frames = 0
        with TerminalScreen(cols, rows) as s:
            clock = time.perf_counter
            next_frame = clock() + FRAME_INTERVAL
            for p in pieces:
                s.feed(p)
                now = clock()
                if now >= next_frame:
                    s.dirty_rows()
                    s.take_replies()
                    frames += 1
                    next_frame = now + FRAME_INTERVAL
            s.dirty_rows()
        return frames + 1

    def feed_every_chunk() -> int:
        with TerminalScreen(cols, rows) as s:
            for p in pieces:
                s.feed(p)
                s.dirty_rows()
        return len(pieces)

    def best(fn: Callable[[], int]) -> tuple[float, int]:
        return min((_timed(fn) for _ in range(repeat)), key=lambda r: r[0])

    t_feed, _ = best(feed_only)
    t_frames, frames = best(feed_frames)
    t_every, _ = best(feed_every_chunk)

    # One full-screen read: a resize marks every row dirty, so frame() decodes them all.
    with TerminalScreen(cols, rows) as s:
        s.feed(data[-200_000:])
        samples = []
        for _ in range(50):
            s.resize(cols, rows + 1)
            s.resize(cols, rows)
            t0 = time.perf_counter()
            s.frame()
            samples.append(time.perf_counter() - t0)
    samples.sort()
    median_ms = samples[len(samples) // 2] * 1e3
    return Result(mb / t_feed, mb / t_frames, mb / t_every, frames, median_ms)


def warm_up() -> None:
    """First use pays for page allocation and code loading; keep that out of the numbers."""
    data = make_inputs(1 << 20)
    for cols, rows in ((80, 24), (200, 50)):
        for blob in data.values():
            bench_screen(blob[: 256 * 1024], cols, rows, repeat=1)


def run(size: int, sizes: list[tuple[int, int]], repeat: int = 3) -> str:
    warm_up()
    lines = [
        "| input | size | MB | feed MB/s | feed+frames@60Hz MB/s | feed+dirty_rows every "
        "chunk MB/s | full-screen read ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for cols, rows in sizes:
        for name, data in make_inputs(size, cols, rows).items():
            r = bench_screen(data, cols, rows, repeat)
            lines.append(
                f"| {name} | {cols}x{rows} | {len(data) / 1e6:.1f} | {r.feed_mbs:.0f} | "
                f"{r.frames_mbs:.0f} | {r.every_chunk_mbs:.0f} | {r.full_frame_ms:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="size of each input in MB")
    parser.add_argument("--sizes", default="80x24,200x50", help="comma-separated COLSxROWS")
    parser.add_argument("--repeat", type=int, default=3, help="runs per number (best kept)")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    print(run(int(args.mb * 1e6), [(c, r) for c, r in sizes], args.repeat))


if __name__ == "__main__":
    main()
