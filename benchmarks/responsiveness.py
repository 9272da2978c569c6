"""Responsiveness under load: key-to-echo latency while 8 other sessions stream.

Eight sessions run `while :; do cat FILE; done` on a mix of plain and SGR-heavy text, with
a UI-like client subscribed to all their frames (it reads and drops them). A ninth session
runs `cat` (the kernel echoes what is typed). A typing client sends one character at a
time with `keys` and stops the clock when a frame it receives shows the character at the
cursor: that is what a person at the UI would wait for.

Reference, same run: the same typing with the 8 sessions idle (`cat` waiting for input).
Also sampled: the daemon's own event-loop lag (`status.loop_lag_ms`, an asyncio sleep's
overshoot measured every 250 ms inside the daemon).

Run: .venv/bin/python benchmarks/responsiveness.py [--quick] [--keys N]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shlex
import subprocess
import sys
import threading
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
    percentile,
    row_text,
    sandbox_ok,
    wait_for,
)
from emulator_throughput import gen_colour, gen_plain

STREAMS = 8
LINE = 40  # characters typed before Enter


class Watcher:
    """A UI-like client in its own process (so its JSON decoding does not hold this
    process's GIL while the typist waits): subscribed to the streams' frames, reading all."""

    def __init__(self, ids: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--watch", ",".join(ids)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.frames = 0
        self.started = time.monotonic()
        self.seconds = 0.0

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.seconds = time.monotonic() - self.started
        self.proc.stdin.close()
        with contextlib.suppress(ValueError):
            self.frames = int(self.proc.stdout.read().strip() or 0)
        self.proc.wait(10)


def watch(ids: list[str]) -> None:
    """The watcher process: read frames until stdin closes, then print how many came."""
    from workbench.daemon.client import Client

    frames = 0
    done = threading.Event()

    def until_eof() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=until_eof, daemon=True).start()
    with Client("bench-watcher", autostart=False) as c:
        c.call("subscribe", ids=ids, frames=True)
        while not done.is_set():
            ev = c.next_event(timeout=0.2)
            if ev is not None and ev.get("event") == "frame":
                frames += 1
    print(frames, flush=True)


class LagSampler(threading.Thread):
    def __init__(self, d: Daemon) -> None:
        super().__init__(daemon=True)
        self.client = d.client("bench-lag")
        self.stop = threading.Event()
        self.samples: list[float] = []

    def run(self) -> None:
        with contextlib.suppress(Exception):
            while not self.stop.wait(0.25):
                self.samples.append(float(self.client.call("status")["loop_lag_ms"]))

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.client.close()


class Typist:
    """Types into one session and waits for each character's echo in received frames."""

    def __init__(self, d: Daemon, sid: str) -> None:
        self.sid = sid
        self.c = d.client("bench-typist")
        self.rows: dict[int, str] = {}
        self.cursor = (0, 0)
        self.c.call("subscribe", ids=[sid], frames=True)

    def _apply(self, ev: dict[str, Any]) -> None:
        if ev.get("event") != "frame" or ev["data"].get("session") != self.sid:
            return
        data = ev["data"]
        if data.get("full"):
            self.rows.clear()
        for y, runs in data["rows"].items():
            self.rows[int(y)] = row_text(runs)
        self.cursor = (data["cursor"][0], data["cursor"][1])

    def _wait(self, pred: Any, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            for ev in self.c.events:
                self._apply(ev)
            self.c.events.clear()
            if pred():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ev = self.c.next_event(timeout=left)
            if ev is not None:
                self._apply(ev)
        return True

    def type(self, keys: int, rng: random.Random) -> list[float]:
        latencies: list[float] = []
        typed = ""
        while len(latencies) < keys:
            if len(typed) >= LINE:
                self.c.call("keys", id=self.sid, data="\r")
                typed = ""
                self._wait(lambda: self.cursor[0] == 0, 10)
                time.sleep(0.02)
                continue
            ch = rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
            expect = typed + ch
            t0 = time.perf_counter()
            self.c.call("keys", id=self.sid, data=ch)

            def echoed(expect: str = expect) -> bool:
                x, y = self.cursor
                return x == len(expect) and self.rows.get(y, "").rstrip() == expect

            if not self._wait(echoed, 10):
                raise RuntimeError(f"no echo of {expect!r} within 10 s (screen {self.rows})")
            latencies.append((time.perf_counter() - t0) * 1000)
            typed = expect
            time.sleep(rng.uniform(0.01, 0.04))
        return latencies

    def close(self) -> None:
        self.c.close()


def measure(d: Daemon, repo: Path, stream_cmd: str | None, sandbox: str, keys: int) -> dict[str, Any]:
    ids: list[str] = []
    watcher = lag = typist = None
    try:
        for i in range(STREAMS):
            agent = f"sh -c {shlex.quote(stream_cmd)}" if stream_cmd else "cat"
            ids.append(new_session(d, repo, agent, sandbox=sandbox, name=f"s{i}")["id"])
        target = new_session(d, repo, "cat", sandbox=sandbox, name="typed")["id"]
        wait_for(lambda: all(s["alive"] for s in d.call("ls")), 20, 0.05)
        watcher = Watcher(ids)
        lag = LagSampler(d)
        lag.start()
        time.sleep(1.0)  # let the streams reach full speed
        typist = Typist(d, target)
        t0 = time.monotonic()
        latencies = typist.type(keys, random.Random(7))
        elapsed = time.monotonic() - t0
        watcher.close()
        return {
            "latencies": latencies,
            "lag": list(lag.samples),
            "frames": watcher.frames,
            "watch_seconds": watcher.seconds,
            "seconds": elapsed,
        }
    finally:
        for obj in (typist, lag):
            if obj is not None:
                obj.close()
        if watcher is not None and watcher.proc.poll() is None:
            watcher.close()
        for sid in [*ids, *([target] if "target" in locals() else [])]:
            with contextlib.suppress(Exception):
                d.call("rm", id=sid)


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--keys", type=int, default=0, help="keystrokes per phase")
    parser.add_argument("--sandbox", choices=["workspace", "off", "auto"], default="auto")
    parser.add_argument("--watch", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch:
        watch(args.watch.split(","))
        return
    started = time.monotonic()
    keys = args.keys or (40 if args.quick else 300)
    sandbox = args.sandbox if args.sandbox != "auto" else ("workspace" if sandbox_ok() else "off")
    res = Result("responsiveness", "2. Responsiveness under load", args.quick)
    with isolated("resp") as root:
        inputs = root / "inputs"
        inputs.mkdir()
        blob = inputs / "mix.bin"
        blob.write_bytes(gen_plain(1_000_000) + gen_colour(1_000_000))
        cfg = root / "config" / "workbench"
        cfg.mkdir(parents=True)
        cfg.joinpath("config.toml").write_text(f'[sandbox]\nextra_ro_binds = ["{inputs}"]\n')
        repo = make_repo(root / "repo")
        with Daemon(root) as d:
            idle = measure(d, repo, None, sandbox, keys)
            load = measure(d, repo, f"while :; do cat {blob}; done", sandbox, keys)
    for q in (50, 99):
        wb = percentile(load["latencies"], q)
        ref = percentile(idle["latencies"], q)
        res.add(Row(f"key-to-echo p{q}, 8 sessions streaming", wb, "ms", ref, "idle sessions",
                    wb / ref if ref else None, "< 50" if q == 99 else ""))
    res.add(Row("daemon event-loop lag p50 under load", median(load["lag"]), "ms",
                median(idle["lag"]), "idle sessions"))
    res.add(Row("daemon event-loop lag p99 under load", percentile(load["lag"], 99), "ms",
                percentile(idle["lag"], 99), "idle sessions"))
    res.add(Row("daemon event-loop lag max under load", max(load["lag"], default=float("nan")),
                "ms", max(idle["lag"], default=float("nan")), "idle sessions"))
    fps = load["frames"] / load["watch_seconds"] / STREAMS if load["watch_seconds"] else 0.0
    res.add(Row("frames/s per streaming session received by the watcher", fps, "frames/s"))
    res.notes.append(
        f"{keys} keystrokes per phase, {LINE} per line, 10-40 ms apart; sandbox={sandbox}; "
        "the streams loop over 1 MB plain + 1 MB SGR-heavy text"
    )
    res.extra = {"load_latencies_ms": load["latencies"], "idle_latencies_ms": idle["latencies"],
                 "load_lag_ms": load["lag"], "idle_lag_ms": idle["lag"]}
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
