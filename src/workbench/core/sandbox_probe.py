"""Can bubblewrap run here with our flags? `probe` really runs it; `diagnose` says why not.

`require` refuses a sandboxed session where the probe failed; `workbench doctor` and the
daemon log show `ProbeResult.describe()`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workbench.core import sandbox_net, seccomp
from workbench.core.bwrap_argv import BASE_MOUNTS, base_flags, find_bwrap, missing_bwrap
from workbench.core.sandbox_policy import DEFAULT_PATH, MODES
from workbench.errors import SandboxError


@dataclass(frozen=True)
class ProbeResult:
    """What `probe` found: whether sessions can be sandboxed, and if not, why and the fix."""

    ok: bool
    bwrap: str | None
    version: str | None
    reason: str | None
    fix: str | None
    as_root: bool
    seccomp_ok: bool
    slirp4netns: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        out = []
        if self.as_root:
            out.append(
                "running as root: inside the sandbox uid 0 is the host's root (without "
                "capabilities), so read-only mounts are all that protects root-owned files; "
                "run workbench as an ordinary user"
            )
        net = sandbox_net.network_problem()
        if self.ok and net:
            out.append(f"sessions with network enabled cannot start: {net[0]} ({net[1]})")
        return tuple(out)

    def describe(self) -> str:
        """One paragraph for `workbench doctor` and the daemon log."""
        if self.ok:
            head = f"sandbox: ok ({self.bwrap}, bubblewrap {self.version}, seccomp on)"
        else:
            head = f"sandbox: UNAVAILABLE: {self.reason}\n  fix: {self.fix}"
        return "\n".join([head, *(f"  warning: {w}" for w in self.warnings)])


# Keyed by (bwrap path, euid): the answer depends on both, and a probe costs two bwrap runs.
_probe_cache: dict[tuple[str | None, int], ProbeResult] = {}


def read_sysctl(path: str) -> str | None:
    """A /proc/sys knob's value, or None where it does not exist."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def diagnose(stderr: str) -> tuple[str, str]:
    """Why bwrap failed, and how to fix it, from its stderr and the kernel's knobs."""
    msg = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
    if "disable-userns" in stderr and ("Unknown option" in stderr or "unrecognized" in stderr):
        return (
            f"bubblewrap is too old: it has no --disable-userns ({msg})",
            "install bubblewrap 0.8 or newer (Debian 12+, Ubuntu 23.10+, Fedora 38+)",
        )
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0" and os.geteuid() != 0:
        return (
            f"unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): {msg}",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1, and persist it in "
            "/etc/sysctl.d/99-userns.conf",
        )
    if read_sysctl("/proc/sys/user/max_user_namespaces") == "0":
        return (
            f"user namespaces are disabled (user.max_user_namespaces=0): {msg}",
            "sudo sysctl -w user.max_user_namespaces=15000, and persist it in "
            "/etc/sysctl.d/99-userns.conf",
        )
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return (
            "AppArmor restricts unprivileged user namespaces "
            f"(kernel.apparmor_restrict_unprivileged_userns=1): {msg}",
            "install an AppArmor profile that allows userns for bwrap (see docs/security.md, "
            "'AppArmor'), or sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        )
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return (
            f"bwrap cannot create namespaces inside this container: {msg}",
            "run the container with --security-opt seccomp=unconfined --security-opt "
            "apparmor=unconfined (or --privileged), or choose sandbox \"off\" explicitly",
        )
    return (
        f"bwrap failed: {msg}",
        "run `bwrap --unshare-all --unshare-user --ro-bind / / true` to see the error; "
        "see docs/security.md, 'When bwrap cannot run'",
    )


def probe_argv(bwrap: str, true: str, seccomp_fd: int | None) -> list[str]:
    """`bwrap ... true` with every session's namespace flags, optionally under the filter."""
    argv = [bwrap, *base_flags(), *BASE_MOUNTS, "--tmpfs", "/tmp", "--clearenv"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", true]


def run_probe(argv: list[str], fds: tuple[int, ...]) -> subprocess.CompletedProcess[str]:
    """Run a probe argv with nothing of our environment but PATH."""
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=20, pass_fds=fds, check=False,
        env={"PATH": os.environ.get("PATH") or DEFAULT_PATH},
    )


def probe(force: bool = False) -> ProbeResult:
    """Whether bubblewrap can run here with our flags: really runs `bwrap ... true`.

    Cached per bwrap path and euid; `force` re-probes.
    """
    bwrap = find_bwrap()
    key = (bwrap, os.geteuid())
    if not force and key in _probe_cache:
        return _probe_cache[key]
    as_root = os.geteuid() == 0
    slirp = shutil.which("slirp4netns")
    if not bwrap:
        reason, fix = missing_bwrap()
        res = ProbeResult(False, None, None, reason, fix, as_root, False, slirp)
        _probe_cache[key] = res
        return res
    version = None
    try:
        v = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10,
                           check=False)
        version = v.stdout.strip().rpartition(" ")[2] or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    true = shutil.which("true") or "/bin/true"
    res = _probe_with(bwrap, version, true, as_root, slirp)
    _probe_cache[key] = res
    return res


def _probe_with(
    bwrap: str, version: str | None, true: str, as_root: bool, slirp: str | None
) -> ProbeResult:
    try:
        plain = run_probe(probe_argv(bwrap, true, None), ())
    except (OSError, subprocess.TimeoutExpired) as e:
        return ProbeResult(False, bwrap, version, f"cannot run {bwrap}: {e}",
                           "check that bwrap is executable", as_root, False, slirp)
    if plain.returncode != 0:
        reason, fix = diagnose(plain.stderr)
        return ProbeResult(False, bwrap, version, reason, fix, as_root, False, slirp)
    try:
        fd = seccomp.memfd()
    except seccomp.UnsupportedArch as e:
        return ProbeResult(False, bwrap, version, str(e), "use sandbox \"off\" on this machine",
                           as_root, False, slirp)
    try:
        filtered = run_probe(probe_argv(bwrap, true, fd), (fd,))
    except (OSError, subprocess.TimeoutExpired) as e:
        filtered = subprocess.CompletedProcess([], 1, "", str(e))
    finally:
        os.close(fd)
    if filtered.returncode != 0:
        msg = filtered.stderr.strip() or "no error output"
        return ProbeResult(
            False, bwrap, version, f"bwrap runs but cannot load the seccomp filter: {msg}",
            "use a kernel with CONFIG_SECCOMP_FILTER (every mainstream distribution has it)",
            as_root, False, slirp,
        )
    return ProbeResult(True, bwrap, version, None, None, as_root, True, slirp)


def require(mode: str) -> None:
    """Refuse to start a sandboxed session where bwrap cannot run; `off` always passes."""
    if mode == "off":
        return
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    res = probe()
    if not res.ok:
        raise SandboxError(
            f"cannot start a session in sandbox mode {mode!r}: {res.reason}",
            hint=f"{res.fix}; or choose sandbox \"off\" explicitly for this session "
            "(it then runs unconfined)",
        )

