"""Drive the real `workbench` CLI (and so a real daemon process) from tests."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import end_process, wait_for


class Wb:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)

    def run(self, *args: str, check: bool = True, timeout: float = 60, cwd: Path | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            capture_output=True, text=True, env=self.env, timeout=timeout, cwd=cwd,
            input=input, stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"workbench {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def new(self, repo: Path, *args: str) -> str:
        return self.run("new", "--repo", str(repo), *args).stdout.strip()

    def session(self, sid: str) -> dict[str, Any]:
        for s in self.json("ls"):
            if s["id"] == sid:
                return dict(s)
        raise AssertionError(f"session {sid} not listed")

    def screen(self, sid: str) -> str:
        return self.run("screen", sid).stdout

    def wait_screen(self, sid: str, text: str, timeout: float = 10) -> str:
        def probe() -> str:
            screen = self.screen(sid)
            return screen if text in screen else ""

        return wait_for(probe, timeout, what=f"{text!r} on screen of {sid}")

    def wait_state(self, sid: str, state: str, timeout: float = 10) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def probe() -> Any:
            s = self.session(sid)
            seen[:] = [s]
            return s if s["state"] == state else None

        try:
            return wait_for(probe, timeout, what=f"state {state} of {sid}")
        except AssertionError as e:
            last = seen[0] if seen else {}
            raise AssertionError(f"{e}; last seen: state {last.get('state')!r}, "
                                 f"reason {last.get('reason')!r}") from None

    def daemon_pid(self) -> int | None:
        runtime = Path(self.env["XDG_RUNTIME_DIR"]) / "workbench" / "daemon.pid"
        try:
            return int(runtime.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.daemon_pid()
        with contextlib.suppress(Exception):
            self.run("daemon", "stop", check=False, timeout=30)
        if pid:
            end_process(pid)
