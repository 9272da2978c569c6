"""`benchmarks/echo_under_load.py --trace` lines up each keystroke's stages across the
benchmark, the UI and the daemon from their trace files: each stage must be written, in
order, by the process that passes it, and nothing at all when tracing is off."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.wb import Wb
from workbench.core import echo_trace

OFF = ("--sandbox", "off")


def test_marks_go_to_this_process_file_only_when_enabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = tmp_path / "trace"
    tmp_path.mkdir()
    monkeypatch.setattr(echo_trace, "_DIR", "")
    monkeypatch.setattr(echo_trace, "_fd", -1)
    echo_trace.mark("typed")
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setenv("WORKBENCH_ECHO_TRACE", "")  # restored after the test
    before = time.monotonic()
    echo_trace.enable(str(tmp_path))
    echo_trace.mark("typed")
    echo_trace.mark("seen")
    after = time.monotonic()
    assert os.environ["WORKBENCH_ECHO_TRACE"] == str(tmp_path)  # children trace too
    lines = (tmp_path / f"{os.getpid()}.log").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["typed", "seen"]
    stamps = [float(ln.split()[1]) for ln in lines]
    assert before <= stamps[0] <= stamps[1] <= after
    os.close(echo_trace._fd)


def test_the_daemon_marks_a_keystroke_on_its_way_to_the_echo(tmp_path: Path, repo: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    wb = Wb({**os.environ, "WORKBENCH_ECHO_TRACE": str(trace)})
    try:
        sid = wb.new(repo, "--agent", "cat", *OFF)
        wb.wait_state(sid, "running")
        wb.run("keys", sid, "x")
        wb.wait_screen(sid, "x")  # the terminal's echo

        def stages() -> list[str]:
            out: list[tuple[float, str]] = []
            for log in trace.glob("*.log"):
                for line in log.read_text().splitlines():
                    stage, at = line.split()
                    out.append((float(at), stage))
            return [s for _, s in sorted(out)]

        seen = wait_for(lambda: (s := stages()) and "daemon.loop" in s and s, 10)
        first = seen.index("daemon.written")
        # Written, its echo parsed in a feeder thread, then followed up on the loop; no UI
        # watches the session's frames, so no echo frame is sent.
        assert seen[first:first + 3] == ["daemon.written", "daemon.parsing", "daemon.loop"]
        assert "daemon.frame" not in seen
    finally:
        wb.stop()
