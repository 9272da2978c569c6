"""Feeder threads (core/pty_feeder.py): PTY output read and parsed off the event loop.

Real PTYs and real programs; the daemon-level tests use the real daemon over its socket.
Hang bounds only, no timing asserts.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from pathlib import Path

from tests.wb import Wb
from workbench.core.pty_feeder import Feeder
from workbench.core.screen import TerminalScreen
from workbench.daemon.client import Client

COLOUR = "".join(f"\x1b[{31 + i % 7};1mword{i}\x1b[0m {'x' * (i % 50)}\r\n" for i in range(4000))


class ScreenSink:
    """What the daemon's runtime does in the feeder thread: parse under the screen's lock."""

    def __init__(self, screen: TerminalScreen) -> None:
        self.screen = screen
        self.done = threading.Event()
        self.releases = 0
        self.threads: set[str] = set()

    @property
    def urgent(self) -> bool:
        return False

    def output(self, data: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        with self.screen.lock:
            self.screen.feed(data)

    def released(self) -> None:
        self.releases += 1
        self.done.set()


def _spawn(argv: list[str]) -> tuple[int, subprocess.Popen[bytes]]:
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    return master, proc


def test_a_feeder_threads_screen_matches_a_direct_feed(tmp_path: Path) -> None:
    data = tmp_path / "colour.txt"
    data.write_text(COLOUR)
    feeder = Feeder(threads=2)
    with TerminalScreen(100, 30) as fed, TerminalScreen(100, 30) as direct:
        sink = ScreenSink(fed)
        master, proc = _spawn(["cat", str(data)])
        feeder.add(master, sink)
        # Read the screen from this thread while the feeder parses: the lock keeps it whole.
        reads = 0
        while not sink.done.wait(0.001):
            assert len(fed.lines()) == 30
            reads += 1
            assert reads < 200_000, "the feeder never reached the end of the output"
        proc.wait(30)
        os.close(master)
        direct.feed(COLOUR.encode())
        assert fed.lines() == direct.lines()
        assert fed.cursor == direct.cursor
        assert sink.releases == 1 and sink.threads == {"pty-feeder"}
    feeder.join(10)
    assert feeder.workers == []


def feeder_threads_of(feeder: Feeder) -> list[threading.Thread]:
    return [w.thread for w in feeder.workers]


def test_remove_reads_what_is_there_then_releases_and_the_thread_ends() -> None:
    feeder = Feeder(threads=1)
    with TerminalScreen(80, 24) as screen:
        sink = ScreenSink(screen)
        # The program keeps the PTY open: only `remove` ends the reading.
        master, proc = _spawn(["sh", "-c", "echo last-words; exec sleep 60"])
        try:
            feeder.add(master, sink)
            deadline = time.monotonic() + 20
            while "last-words" not in "\n".join(screen.lines()):
                assert time.monotonic() < deadline, "output never parsed"
                time.sleep(0.01)
            workers = feeder_threads_of(feeder)
            assert len(workers) == 1 and workers[0].is_alive()
            feeder.remove(master)
            assert sink.done.wait(20), "remove never released the fd"
            feeder.join(10)
            assert not workers[0].is_alive() and feeder.workers == []
            assert sink.releases == 1
        finally:
            proc.kill()
            proc.wait(10)
            os.close(master)


def test_a_thread_is_shared_and_a_new_one_starts_after_the_last_ended(tmp_path: Path) -> None:
    feeder = Feeder(threads=1)
    screens = [TerminalScreen(80, 24) for _ in range(3)]
    try:
        sinks = [ScreenSink(s) for s in screens]
        spawned = [_spawn(["echo", f"out{i}"]) for i in range(2)]
        for (master, _), sink in zip(spawned, sinks, strict=False):
            feeder.add(master, sink)
        assert len(feeder.workers) == 1
        for (master, proc), sink in zip(spawned, sinks, strict=False):
            assert sink.done.wait(20)
            proc.wait(10)
            os.close(master)
        feeder.join(10)
        assert feeder.workers == []
        master, proc = _spawn(["echo", "again"])
        feeder.add(master, sinks[2])
        assert sinks[2].done.wait(20)
        proc.wait(10)
        os.close(master)
        assert "again" in screens[2].lines()[0]
        feeder.join(10)
        assert feeder.workers == []
    finally:
        for s in screens:
            s.close()


# --- through the daemon ------------------------------------------------------------------


def _streams(wb: Wb, repo: Path, tmp_path: Path, n: int) -> list[str]:
    blob = tmp_path / "blob.txt"
    blob.write_text(COLOUR * 4)
    loop = f"while :; do cat {blob}; done"
    return [wb.new(repo, "--sandbox", "off", "--name", f"s{i}", "--agent", f"sh -c {shlex.quote(loop)}")
            for i in range(n)]


def _frames_text(ev: dict[str, object]) -> str:
    data = ev["data"]
    assert isinstance(data, dict)
    return "\n".join("".join(run[0] for run in row) for row in data["rows"].values())


def test_echo_frame_arrives_while_8_sessions_stream(wb: Wb, repo: Path, tmp_path: Path) -> None:
    streams = _streams(wb, repo, tmp_path, 8)
    typed = wb.new(repo, "--sandbox", "off", "--name", "typed", "--agent", "cat")
    for sid in [*streams, typed]:
        wb.wait_state(sid, "running", timeout=30)
    with Client("test") as c:
        c.call("subscribe", ids=[typed], frames=True)
        for word in ("alpha", "bravo", "charlie"):
            c.call("keys", id=typed, text=word)
            seen = ""
            deadline = time.monotonic() + 30
            while word not in seen:
                assert time.monotonic() < deadline, f"no echo of {word!r} while 8 sessions stream"
                ev = c.next_event(timeout=5)
                if ev is not None and ev["event"] == "frame":
                    assert ev["data"]["session"] == typed
                    seen += _frames_text(ev)
            c.call("keys", id=typed, text="\r")
    assert all(s["alive"] for s in wb.json("ls") if s["id"] in streams)


def test_frames_of_a_session_not_subscribed_are_not_sent(wb: Wb, repo: Path, tmp_path: Path) -> None:
    """The UI subscribes to the frames of visible sessions only; a streaming hidden one
    sends it nothing, and the all-sessions event connection gets no frames at all."""
    (hidden,) = _streams(wb, repo, tmp_path, 1)
    shown = wb.new(repo, "--sandbox", "off", "--name", "shown", "--agent", "cat")
    for sid in (hidden, shown):
        wb.wait_state(sid, "running", timeout=30)
    with Client("ui") as events, Client("ui-frames") as frames:
        events.call("subscribe", all=True)
        frames.call("subscribe", ids=[shown], frames=True)
        frames.call("keys", id=shown, text="visible")
        got: list[str] = []
        deadline = time.monotonic() + 30
        while "visible" not in "".join(got):
            assert time.monotonic() < deadline, "no frame of the shown session"
            ev = frames.next_event(timeout=5)
            if ev is not None and ev["event"] == "frame":
                assert ev["data"]["session"] == shown
                got.append(_frames_text(ev))
        time.sleep(0.3)  # the hidden session keeps streaming meanwhile
        for ev in [*frames.events, *events.events]:
            assert ev["event"] != "frame" or ev["data"]["session"] == shown
        while (ev := events.next_event(timeout=0.2)) is not None:
            assert ev["event"] != "frame"


def test_an_fd_that_cannot_be_watched_is_released_at_once() -> None:
    feeder = Feeder(threads=1)
    with TerminalScreen(80, 24) as screen:
        sink = ScreenSink(screen)
        feeder.add(1_000_000, sink)  # no such fd
        assert sink.done.wait(20), "an fd epoll refused was never released"
        feeder.join(10)
        assert feeder.workers == [] and sink.releases == 1


class RecordingSink:
    """Records each chunk it is given; the first chunk of a `hold` sink waits for `go`."""

    def __init__(self, name: str, log: list[tuple[str, int]], urgent: bool = False,
                 hold: threading.Event | None = None) -> None:
        self.name, self.log, self._urgent, self.hold = name, log, urgent, hold
        self.holding = threading.Event()
        self.released_ = threading.Event()

    @property
    def urgent(self) -> bool:
        return self._urgent

    def output(self, data: bytes) -> None:
        self.log.append((self.name, len(data)))
        if self.hold is not None and not self.holding.is_set():
            self.holding.set()
            assert self.hold.wait(20), "the test never let the feeder go on"

    def released(self) -> None:
        self.released_.set()


def test_an_echo_is_read_between_the_chunks_of_busy_ptys_not_after_them() -> None:
    """Three busy pipes ready at once, and the typed-into one becomes ready while the first
    busy chunk is being parsed: its echo is read next, not after the other two (a keystroke
    waited behind a whole round of other sessions' parsing: 2.6 ms at p50, 8.9 at p99), and
    while a session is typed into the others are read in smaller chunks."""
    from workbench.core.pty_feeder import CHUNK, URGENT_CHUNK

    feeder = Feeder(threads=1)
    log: list[tuple[str, int]] = []
    go = threading.Event()
    pipes = [os.pipe2(os.O_NONBLOCK) for _ in range(4)]
    try:
        for _, w in pipes[:3]:
            os.write(w, b"x" * 60000)
        urgent_r, urgent_w = pipes[3]
        typed = RecordingSink("typed", log, urgent=True)
        feeder.add(urgent_r, typed)
        busy = [RecordingSink(f"busy{i}", log, hold=go) for i in range(3)]
        for (r, _), sink in zip(pipes[:3], busy, strict=True):
            feeder.add(r, sink)
        first = None
        for _ in range(2000):
            first = next((s for s in busy if s.holding.is_set()), None)
            if first is not None:
                break
            time.sleep(0.01)
        assert first is not None, "no busy pipe was read"
        os.write(urgent_w, b"k")  # the echo, while `first` is being parsed
        go.set()
        for _ in range(2000):
            if ("typed", 1) in log:
                break
            time.sleep(0.01)
        at = log.index(("typed", 1))
        before = [name for name, _ in log[:at]]
        assert before.count(first.name) == len(before) and len(before) == 1, log[: at + 1]
        assert all(n <= URGENT_CHUNK for name, n in log if name != "typed"), log
        assert URGENT_CHUNK < CHUNK
    finally:
        for r, w in pipes:
            feeder.remove(r)
            os.close(w)
        feeder.join(10)
        for r, _ in pipes:
            os.close(r)


def test_without_a_session_typed_into_busy_ptys_are_read_in_whole_chunks() -> None:
    from workbench.core.pty_feeder import CHUNK

    feeder = Feeder(threads=1)
    log: list[tuple[str, int]] = []
    r, w = os.pipe2(os.O_NONBLOCK)
    try:
        os.write(w, b"x" * 60000)
        sink = RecordingSink("busy", log)
        feeder.add(r, sink)
        for _ in range(2000):
            if sum(n for _, n in log) >= 60000:
                break
            time.sleep(0.01)
        assert max(n for _, n in log) == CHUNK, log
    finally:
        feeder.remove(r)
        os.close(w)
        feeder.join(10)
        os.close(r)
