"""A session's program starts with every signal at its default action and none blocked, as
under tmux, whatever the daemon inherited: Python ignores SIGPIPE and SIGXFSZ, and a daemon
started from a script's background job also ignores SIGINT and SIGQUIT (then Ctrl-C could
not stop anything in a session)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

from workbench.core.pty import PtyProcess

PROBE = "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1; echo rc=${PIPESTATUS[0]}"


def _run(tmp_path: Path) -> str:
    async def main() -> str:
        out: list[bytes] = []
        proc = PtyProcess(["bash", "-c", PROBE], cwd=tmp_path, env=dict(os.environ), cols=80, rows=24)
        proc.start(out.append, lambda p: None)
        await asyncio.wait_for(proc.wait(), 30)
        for _ in range(100):  # the feeder thread may still hand over the last bytes
            if b"rc=" in b"".join(out):
                break
            await asyncio.sleep(0.02)
        return b"".join(out).decode(errors="replace")

    return asyncio.run(main())


# Signals 32 and 33 belong to the C library's threads: no program can set them, so nothing
# can reset them either (a CI runner passed 32 down as ignored).
_LIBC_OWN = (1 << 31) | (1 << 32)


def _status(text: str) -> dict[str, int]:
    """SigIgn and SigBlk from /proc/self/status, without the C library's own signals."""
    return {k: int(v.strip(), 16) & ~_LIBC_OWN
            for k, _, v in (ln.partition(":") for ln in text.splitlines() if ln.startswith("Sig"))}


def test_a_session_starts_with_default_signals_whatever_the_daemon_ignores(tmp_path: Path) -> None:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGQUIT)}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `daemon &` in a script gets
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        text = _run(tmp_path)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for s, h in saved.items():
            signal.signal(s, h)
    status = _status(text)
    assert status == {"SigIgn": 0, "SigBlk": 0}, text
    # `yes` ends by SIGPIPE, silently, as in a terminal (rc 141), not with "Broken pipe".
    assert "Broken pipe" not in text and "rc=141" in text, text


def test_a_session_started_from_a_worker_thread_gets_the_defaults_too(tmp_path: Path) -> None:
    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(_run(tmp_path)))
    t.start()
    t.join(60)
    assert _status(got[0])["SigIgn"] == 0 and "rc=141" in got[0], got[0]
