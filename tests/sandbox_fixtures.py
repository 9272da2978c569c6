"""A real world to attack: a repo, two sessions' worktrees, secrets and host listeners.

Everything a test creates lives under pytest's tmp_path, which is under /tmp; the sandbox
replaces /tmp with an empty tmpfs, which would hide it all and make every attack fail for
the wrong reason. So the default spec binds tmp_path back read-only (as a user's home
directory is visible on a real machine), and each protection is exercised on its own:
hidden secrets, protected workbench dirs, the read-only repo, seccomp, namespaces.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ptyprocess

from tests.conftest import git, make_repo
from workbench import paths
from workbench.core import bwrap_argv, sandbox_paths, session_repo
from workbench.core.pty import default_signals
from workbench.core.sandbox_policy import SandboxSpec

SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nwb-test-secret-key-material\n"
DOTENV_SECRET = "API_TOKEN=wb-dotenv-secret-123"


def inside_python() -> str:
    """A Python the sandbox can run: the system one, else ours (bound in by `World`)."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


@dataclass
class Session:
    slug: str
    branch: str
    worktree: Path
    gitdir: Path
    home: Path


@dataclass
class World:
    tmp: Path
    repo: Path
    common: Path
    me: Session
    sibling: Session
    real_home: Path
    secret: Path
    dotenv: Path

    def spec(self, session: Session | None = None, **kw: Any) -> SandboxSpec:
        s = session or self.me
        other = self.sibling if s is self.me else self.me
        ro = [str(self.tmp)]
        # The runner's Python and packages (a CI clone may sit in /tmp, which a session sees
        # as its own empty /tmp), as a project's venv would be bound.
        for p in (sys.prefix, *os.environ.get("PYTHONPATH", "").split(":")):
            if p and Path(p).resolve().is_relative_to("/tmp"):
                ro.append(str(Path(p).resolve()))
        base: dict[str, Any] = {
            "mode": "workspace",
            "worktree": s.worktree,
            "repo": self.repo,
            "git_common_dir": self.common,
            "worktree_gitdir": s.gitdir,
            "branch": s.branch,
            "home": s.home,
            "extra_ro_binds": tuple(ro),
            "protected_paths": (other.worktree, other.home),
        }
        base.update(kw)
        return SandboxSpec(**base)

    def run(
        self,
        argv: Sequence[str],
        *,
        spec: SandboxSpec | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        cmd = bwrap_argv.wrap(spec or self.spec(), list(argv), cwd=cwd, new_session=True)
        try:
            return subprocess.run(
                cmd.argv, env=cmd.env, cwd=cmd.cwd, pass_fds=cmd.pass_fds,
                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                check=False,
            )
        finally:
            cmd.close()

    def sh(self, script: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(["bash", "-c", script], **kw)

    def py(self, code: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run([inside_python(), "-c", code], **kw)

    def host_git(self, *args: str, cwd: Path | None = None) -> str:
        return git(cwd or self.repo, *args).strip()


def _add_session(repo: Path, slug: str) -> Session:
    """A session as the daemon makes one: a private repository sharing the user's objects."""
    data = paths.data_dir()
    wt = data / "worktrees" / slug
    branch = f"wb/{slug}"
    session_repo.create(repo, wt, slug, branch, git(repo, "rev-parse", "main").strip())
    home = data / "sessions" / slug / "home"
    sandbox_paths.prepare_home(home, repo)
    return Session(slug, branch, wt, wt / ".git", home)


def build_world(tmp: Path) -> World:
    files = {
        "README.md": "# demo\n",
        "app.py": "def add(a, b):\n    return a + b\n",
        "test_app.py": "from app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        ".gitignore": ".env\n__pycache__/\n.pytest_cache/\n",
    }
    repo = make_repo(tmp / "repo", files)
    dotenv = repo / ".env"
    dotenv.write_text(DOTENV_SECRET + "\n")
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    me = _add_session(repo, "me")
    sibling = _add_session(repo, "alpha")
    real_home = Path(os.environ["HOME"])
    ssh = real_home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    secret = ssh / "id_rsa"
    secret.write_text(SECRET_KEY)
    secret.chmod(0o600)
    (real_home / ".bashrc").write_text("# real rc\n")
    return World(tmp, repo, repo / ".git", me, sibling, real_home, secret, dotenv)


# ------------------------------------------------------------------------- listeners


class _Listener:
    """A host-side server on its own thread that records every connection or datagram."""

    def __init__(self, sock: socket.socket, *, stream: bool) -> None:
        self.sock = sock
        self.stream = stream
        self.hits = 0
        self._stop = False
        sock.settimeout(0.1)
        if stream:
            sock.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                if self.stream:
                    conn, _ = self.sock.accept()
                    self.hits += 1
                    with contextlib.suppress(OSError):
                        conn.sendall(b"host-service\n")
                    conn.close()
                else:
                    self.sock.recv(4096)
                    self.hits += 1
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@contextlib.contextmanager
def tcp_listener() -> Iterator[tuple[_Listener, int]]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    lis = _Listener(s, stream=True)
    try:
        yield lis, s.getsockname()[1]
    finally:
        lis.close()


@contextlib.contextmanager
def udp_listener() -> Iterator[tuple[_Listener, int]]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    lis = _Listener(s, stream=False)
    try:
        yield lis, s.getsockname()[1]
    finally:
        lis.close()


@contextlib.contextmanager
def unix_listener(path: Path | None = None) -> Iterator[tuple[_Listener, str]]:
    """A path socket (in a fresh dir under /tmp by default) listening on the host."""
    made: str | None = None
    if path is None:
        made = tempfile.mkdtemp(prefix="wb-host-sock-", dir="/tmp")
        path = Path(made) / "service.sock"
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    lis = _Listener(s, stream=True)
    try:
        yield lis, str(path)
    finally:
        lis.close()
        with contextlib.suppress(OSError):
            path.unlink()
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(made)


@contextlib.contextmanager
def abstract_listener() -> Iterator[tuple[_Listener, str]]:
    name = f"wb-test-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + name)
    lis = _Listener(s, stream=True)
    try:
        yield lis, name
    finally:
        lis.close()


@contextlib.contextmanager
def outside_process(env_secret: str) -> Iterator[subprocess.Popen[bytes]]:
    """A long-lived host process (stands in for the daemon) with a secret in its env."""
    env = dict(os.environ, WB_OUTSIDE_SECRET=env_secret)
    proc = subprocess.Popen(["sleep", "60"], env=env)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


# ------------------------------------------------------------------------------ PTY


class PtyShell:
    """An interactive bash in the sandbox on a real PTY, with a tiny expect()."""

    PROMPT = "WBPROMPT> "

    def __init__(self, world: World, spec: SandboxSpec | None = None, *, cols: int = 80,
                 rows: int = 24) -> None:
        env_spec = spec or world.spec()
        cmd = bwrap_argv.wrap(env_spec, ["bash", "--norc", "--noprofile", "-i"])
        try:
            # As the daemon starts a session: signals at their defaults (a suite run from a
            # script's background job ignores SIGINT, and ^C then stopped nothing).
            self.proc = ptyprocess.PtyProcess.spawn(
                cmd.argv, cwd=str(cmd.cwd), env=cmd.env, dimensions=(rows, cols),
                pass_fds=cmd.pass_fds, preexec_fn=default_signals,
            )
        finally:
            cmd.close()
        self.buf = ""
        # Quoted apart so the echoed command line does not contain the prompt itself.
        self.send("PS1='WB''PROMPT> '; PS2=''; bind 'set enable-bracketed-paste off'\n")
        self.expect_prompt()

    def send(self, data: str | bytes) -> None:
        self.proc.write(data.encode() if isinstance(data, str) else data)

    def expect(self, needle: str, timeout: float = 10) -> str:
        """Read until `needle` appears; returns (and consumes) the output up to it."""
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {needle!r}; got {self.buf[-800:]!r}")
            r, _, _ = select.select([self.proc.fd], [], [], min(left, 0.2))
            if r:
                try:
                    self.buf += self.proc.read(65536).decode(errors="replace")
                except EOFError:
                    raise AssertionError(f"shell exited; output {self.buf[-800:]!r}") from None
        head, _, self.buf = self.buf.partition(needle)
        return head

    def interrupt(self, key: str, tries: int = 10) -> str:
        """Send a job-control key until the prompt returns.

        The key can land before bash has handed the terminal to the job; then it goes
        to bash, which ignores it, and the job keeps running. Sending again fixes that.
        """
        out = ""
        for _ in range(tries):
            self.send(key)
            try:
                return out + self.expect_prompt(timeout=1)
            except AssertionError:
                out += self.buf
                self.buf = ""
        raise AssertionError(f"no prompt after {key!r}: {out[-800:]!r}")

    def expect_prompt(self, timeout: float = 10) -> str:
        return self.expect(self.PROMPT, timeout)

    def run(self, line: str, timeout: float = 10) -> str:
        """Send one command line; return what it printed before the next prompt."""
        self.send(line + "\n")
        out = self.expect_prompt(timeout)
        # Drop the echoed command line.
        return out.split("\n", 1)[1] if "\n" in out else ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.terminate(force=True)
        with contextlib.suppress(Exception):
            self.proc.close(force=True)
