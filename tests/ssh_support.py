"""A real OpenSSH server on 127.0.0.1 for the remote-host tests, and a "remote" workbench:
this same install run through a wrapper that gives it XDG directories of its own, so the
daemon it starts is another daemon than the local one (docs/remote.md, "Tests").

Run as root (CI), the tests log in as a user they create (`wbremote`), so the remote
daemon, its sessions and repositories belong to another account than the local side's;
as any other user they log in as that user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import workbench
from tests.helpers import end_process

SSHD = "/usr/sbin/sshd"


def missing_tools() -> str | None:
    """Why the tests cannot run here, or None."""
    for tool in (SSHD, shutil.which("ssh"), shutil.which("ssh-keygen")):
        if not tool or not os.access(tool, os.X_OK):
            return "OpenSSH (openssh-server and openssh-client) is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wb-test", "-f", str(path)],
                   check=True, capture_output=True)


REMOTE_USER = "wbremote"


@dataclass
class LoginUser:
    """Who the tests log in as over ssh; `created`: a user this suite made (run as root)."""

    name: str
    uid: int
    gid: int
    created: bool

    def argv(self, argv: list[str]) -> list[str]:
        """`argv` run as this user (with the environment it is given, not root's)."""
        return ["runuser", "-u", self.name, "--", *argv] if self.created else argv

    def own(self, path: Path) -> None:
        """Hand `path` (recursively) to the user."""
        if self.created:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)


def current_user() -> LoginUser:
    pw = pwd.getpwuid(os.getuid())
    return LoginUser(pw.pw_name, pw.pw_uid, pw.pw_gid, created=False)


def login_user() -> LoginUser:
    """As root: the suite's own `wbremote` (made if missing); otherwise the current user."""
    if os.getuid() != 0:
        return current_user()
    try:
        pw = pwd.getpwnam(REMOTE_USER)
    except KeyError:
        made = subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", REMOTE_USER],
                              capture_output=True, text=True)
        try:  # another test worker may have made it meanwhile
            pw = pwd.getpwnam(REMOTE_USER)
        except KeyError:
            raise RuntimeError(f"cannot create the user {REMOTE_USER}: {made.stderr.strip()}") from None
        # useradd leaves the account locked ("!"), which sshd refuses even for a key; "*" is
        # no password at all, not a locked account.
        subprocess.run(["usermod", "-p", "*", REMOTE_USER], check=True, capture_output=True)
    return LoginUser(pw.pw_name, pw.pw_uid, pw.pw_gid, created=True)


@dataclass
class Sshd:
    root: Path
    port: int
    user: str
    ssh_config: Path
    proc: subprocess.Popen[bytes]
    keys: Path

    def user_script(self, name: str, text: str) -> Path:
        """An executable the login user can run (in the world-readable directory that also
        holds the authorized keys; root's test directories are closed to that user)."""
        path = self.keys / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.keys, ignore_errors=True)


def start_sshd(root: Path, user: LoginUser | None = None) -> Sshd:
    """sshd in the foreground on a free port: its own host key, config and pid file under
    `root`, the client's key authorized for `user` (default `login_user()`); a client
    config with the generated key and no known-hosts file."""
    root.mkdir(parents=True, exist_ok=True)
    user = user or login_user()
    keygen(root / "host_key")
    keygen(root / "client_key")
    # sshd reads the authorized keys as the user logging in: a directory that user can read.
    keys = Path(tempfile.mkdtemp(prefix="wbssh-", dir="/tmp"))
    keys.chmod(0o755)
    shutil.copy(root / "client_key.pub", keys / "authorized_keys")
    (keys / "authorized_keys").chmod(0o644)
    if os.getuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = free_port()
    (root / "sshd_config").write_text(f"""
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {keys}/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
LogLevel ERROR
""")
    (root / "ssh_config").write_text(f"""
Host *
  IdentityFile {root}/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
""")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(root / "sshd.log", "wb"))  # noqa: SIM115 - the child keeps it
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {(root / 'sshd.log').read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("sshd did not listen within 30 s")
        time.sleep(0.05)
    return Sshd(root, port, user.name, root / "ssh_config", proc, keys)


@dataclass
class RemoteInstall:
    """The remote side: a wrapper script (`--workbench`) and the environment it sets."""

    root: Path
    wrapper: Path
    env: dict[str, str]
    user: LoginUser
    python: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The remote workbench's CLI, run here directly (not over ssh) as the remote user:
        to look behind the link."""
        env_args = [f"{k}={v}" for k, v in self.env.items()]
        argv = self.user.argv(["env", "-i", *env_args, self.python, "-m", "workbench", *args])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"remote workbench {args} exited {proc.returncode}: {proc.stderr}")
        return proc

    def make_repo(self, name: str, files: dict[str, str] | None = None) -> Path:
        """A repository on the remote side, owned by the remote user."""
        from tests.conftest import make_repo

        path = make_repo(self.root / "repos" / name, files)
        self.user.own(self.root / "repos")
        return path

    def daemon_pid(self) -> int | None:
        try:
            return int((Path(self.env["XDG_RUNTIME_DIR"]) / "workbench" / "daemon.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.daemon_pid()
        self.run("daemon", "stop", check=False)
        if pid:
            end_process(pid)
        shutil.rmtree(self.env["XDG_RUNTIME_DIR"], ignore_errors=True)
        if self.user.created:
            shutil.rmtree(self.root, ignore_errors=True)


def _runs(user: LoginUser, argv: list[str]) -> bool:
    return subprocess.run(user.argv(argv), capture_output=True, timeout=60).returncode == 0


def _python_for(user: LoginUser) -> str:
    """An interpreter of this version the user can run: the venv's often lives under /root."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for cand in (sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.access(cand, os.X_OK) and _runs(user, [cand, "-c", "pass"]):
            return cand
    raise RuntimeError(f"no python{version} that {user.name} can run; install python{version}")


def make_remote(root: Path, extra_env: dict[str, str], user: LoginUser | None = None) -> RemoteInstall:
    """The remote install for `user` (default `login_user()`). For a user the suite made,
    under a directory of its own in /tmp (root's test directories are closed to it), with
    an interpreter it can run and the package and its dependencies where it can read them."""
    import sysconfig

    user = user or login_user()
    if user.created:
        root = Path(tempfile.mkdtemp(prefix="wbremote-", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    runtime = tempfile.mkdtemp(prefix="wbrr-", dir="/tmp")  # sun_path is short
    src = str(Path(workbench.__file__).resolve().parents[1])
    site = sysconfig.get_paths()["purelib"]
    python = sys.executable
    if user.created:
        python = _python_for(user)
        if not _runs(user, ["test", "-r", f"{src}/workbench/__init__.py"]):
            shutil.copytree(src, root / "src", symlinks=True)
            src = str(root / "src")
        if not _runs(user, ["test", "-r", f"{site}/click/__init__.py"]):
            shutil.copytree(site, root / "site-packages", symlinks=True)
            site = str(root / "site-packages")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{src}:{site}" if python != sys.executable else src,
        "XDG_RUNTIME_DIR": runtime,
        "GIT_AUTHOR_NAME": "Remote", "GIT_AUTHOR_EMAIL": "remote@example.com",
        "GIT_COMMITTER_NAME": "Remote", "GIT_COMMITTER_EMAIL": "remote@example.com",
        "GIT_CONFIG_NOSYSTEM": "1", "SHELL": "/bin/bash", "LANG": "C.UTF-8",
        **extra_env,
    }
    for name in ("config", "data", "state", "cache", "home"):
        (root / name).mkdir(exist_ok=True)
        env["HOME" if name == "home" else f"XDG_{name.upper()}_HOME"] = str(root / name)
    wrapper = root / "remote-workbench"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    wrapper.write_text(f"#!/bin/sh\n{exports}exec {shlex.quote(python)} -m workbench \"$@\"\n")
    wrapper.chmod(0o755)
    user.own(root)
    user.own(Path(runtime))
    return RemoteInstall(root, wrapper, {**env}, user, python)
