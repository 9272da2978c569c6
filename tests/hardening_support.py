"""Shared helpers for the hardening tests (socket endpoints, terminal escapes, faults, fuzzing, soak).

- `Canary`: files outside the data dir (and the repo's refs and config) that an injected
  path or git option would touch; `assert_untouched()` proves none was.
- `builtin_config()`: points the daemon's default provider at a FakeOpenAI.
- process/fd/RSS probes of a daemon pid for leak checks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import git
from tests.helpers import wait_for
from tests.wb import Wb
from workbench import paths
from workbench.daemon.client import Client


class Canary:
    """A victim directory plus the repo's refs/config: the things an escape would touch."""

    def __init__(self, root: Path, repo: Path) -> None:
        self.root = root
        self.repo = repo
        self.victim = root / "victim"
        self.victim.mkdir(parents=True, exist_ok=True)
        (self.victim / "target.txt").write_text("keep me\n")
        (self.victim / "secret.txt").write_text("SECRET-CANARY-9f3e\n")
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        victim = {
            str(p.relative_to(self.victim)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(self.victim.rglob("*"))
        }
        return {
            "victim": victim,
            "refs": git(self.repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main", "refs/tags"),
            "config": (self.repo / ".git" / "config").read_bytes(),
            "hooks": sorted(p.name for p in (self.repo / ".git" / "hooks").iterdir()),
            "checkout": git(self.repo, "status", "--porcelain", "--untracked-files=all"),
            "pwned": self.pwned(),
        }

    def pwned(self) -> list[str]:
        """Files named like an injection payload's output, anywhere under the test root."""
        return sorted(str(p) for p in self.root.rglob("pwned*"))

    def assert_untouched(self) -> None:
        now = self.snapshot()
        for key in self.before:
            assert now[key] == self.before[key], f"{key} changed: {self.before[key]!r} -> {now[key]!r}"


def payloads(root: Path) -> list[str]:
    """Strings that would escape a path or become a git option if passed through unchecked."""
    pwned = root / "pwned-file"
    return [
        "../../../../../../../../" + str(root / "victim" / "target.txt").lstrip("/"),
        "../victim/target.txt",
        str(root / "victim" / "target.txt"),
        "/etc/passwd",
        "-rf",
        f"--output={pwned}",
        f"--exec=touch {pwned}",
        f"-c core.pager=touch {pwned}",
        f"$(touch {pwned})",
        "x\ny",
        "x\rz",
        "a\x00b",
        "..",
        ".",
        "~",
        "\x1b]0;pwned-title\x07",
        ":(glob)**",
        "HEAD@{-1}",
    ]


def builtin_config(base_url: str, *, timeout_s: float = 30, max_retries: int = 2, extra: str = "") -> None:
    """Config for built-in sessions talking to a FakeOpenAI (chat wire, tiny retries)."""
    cfg = paths.config_dir()
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(
        "[providers.default]\n"
        f'base_url = "{base_url}"\n'
        'api_key_env = "WB_FAKE_KEY"\n'
        'model = "fake-model"\n'
        'wire_api = "chat"\n'
        f"timeout_s = {timeout_s}\n"
        f"max_retries = {max_retries}\n" + extra
    )  # (no key is needed: the fake server accepts any; the daemon reads config per session)


def log_kinds(sid: str) -> list[str]:
    with Client("t") as c:
        return [e["kind"] for e in c.call("log", id=sid)]


def log_entries(sid: str) -> list[dict[str, Any]]:
    with Client("t") as c:
        return list(c.call("log", id=sid))


def wait_log(sid: str, pred: Any, timeout: float = 20, what: str = "") -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]]:
        entries = log_entries(sid)
        return entries if pred(entries) else []

    return wait_for(probe, timeout, interval=0.1, what=what or "a log entry")


def session(sid: str) -> dict[str, Any]:
    with Client("t") as c:
        return dict(c.call("get", id=sid))


def wait_session(sid: str, pred: Any, timeout: float = 20, what: str = "") -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        s = session(sid)
        return s if pred(s) else {}

    return wait_for(probe, timeout, interval=0.1, what=what or f"session {sid}")


def kill9_daemon(wb: Wb) -> int:
    pid = wb.daemon_pid()
    assert pid, "no daemon pid"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # The daemon is a grandchild (start_new_session); our reaper only helps if it is ours.
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)
    return pid


# --------------------------------------------------------------------------- process probes


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def descendants(pid: int) -> list[int]:
    """Live (non-zombie) descendants of pid, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        if rest[0] == "Z":
            continue
        children.setdefault(int(rest[1]), []).append(int(d))
    out: list[int] = []
    stack = [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def worktree_list(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [ln[9:] for ln in out.splitlines() if ln.startswith("worktree ")]


def cli_json(wb: Wb, *args: str) -> Any:
    return json.loads(wb.run(*args, "--json").stdout)


def run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
