"""A real OpenSSH server on 127.0.0.1 for the remote-host tests, and a "remote" workbench:
this same install run through a wrapper that gives it XDG directories of its own, so the
daemon it starts is another daemon than the local one (docs/remote.md, "Tests")."""

from __future__ import annotations

import contextlib
import getpass
import os
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


@dataclass
class Sshd:
    root: Path
    port: int
    user: str
    ssh_config: Path
    proc: subprocess.Popen[bytes]

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


def start_sshd(root: Path) -> Sshd:
    """sshd in the foreground on a free port: its own host key, config, authorized key and
    pid file under `root`; a client config with the generated key and no known-hosts file."""
    root.mkdir(parents=True, exist_ok=True)
    user = getpass.getuser()
    keygen(root / "host_key")
    keygen(root / "client_key")
    shutil.copy(root / "client_key.pub", root / "authorized_keys")
    if os.getuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = free_port()
    (root / "sshd_config").write_text(f"""
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
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
    return Sshd(root, port, user, root / "ssh_config", proc)


@dataclass
class RemoteInstall:
    """The remote side: a wrapper script (`--workbench`) and the environment it sets."""

    root: Path
    wrapper: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The remote workbench's CLI, run here directly (not over ssh): to look behind the link."""
        proc = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                              env=self.env, timeout=120, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"remote workbench {args} exited {proc.returncode}: {proc.stderr}")
        return proc

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


def make_remote(root: Path, extra_env: dict[str, str]) -> RemoteInstall:
    root.mkdir(parents=True, exist_ok=True)
    runtime = tempfile.mkdtemp(prefix="wbrr-", dir="/tmp")  # sun_path is short
    src = str(Path(workbench.__file__).resolve().parents[1])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": src,
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
    wrapper.write_text(f"#!/bin/sh\n{exports}exec {shlex.quote(sys.executable)} -m workbench \"$@\"\n")
    wrapper.chmod(0o755)
    return RemoteInstall(root, wrapper, {**env})
