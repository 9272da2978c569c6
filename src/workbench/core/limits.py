"""Resource caps for a sandbox: tmpfs size, process count.

- `/tmp`, `/var/tmp` and `/run` are tmpfs, i.e. RAM: bubblewrap's `--size` (0.7+)
  caps each. Older bubblewrap has no such option; the mounts are then uncapped and
  `workbench doctor` says so.
- Processes (threads count too) are capped two ways, since neither holds everywhere:
  * RLIMIT_NPROC, set inside the sandbox just before the command. Since Linux 5.14 the
    count is per user namespace, so the limit counts the sandbox's own tasks, not the
    user's others. The kernel never applies it to host root (uid 0 outside), which is
    what a session run by root is.
  * a cgroup `pids.max`, where the daemon can write a pids cgroup (root, or a
    delegated cgroup v2 subtree): bwrap is started inside a per-session child cgroup.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TMP_SIZE_MB = 512
DEFAULT_MAX_PROCESSES = 1024
CGROUP_DIR_NAME = "workbench"
# Empty session cgroups older than this are removed when another one is made; younger
# ones may belong to a spawn that has not joined yet.
_PRUNE_AFTER_S = 120

# Host side: join the cgroup (its cgroup.procs is $1), then become bwrap.
_JOIN_CGROUP = (
    'echo $$ > "$1" || { echo "workbench: cannot join cgroup $1" >&2; exit 125; }; '
    'shift; exec "$@"'
)
# Sandbox side, when prlimit(1) is missing: the same with Python.
_SET_NPROC_PY = (
    "import os,resource,sys;n=int(sys.argv[1]);"
    "resource.setrlimit(resource.RLIMIT_NPROC,(n,n));os.execvp(sys.argv[2],sys.argv[2:])"
)


@functools.cache
def tmpfs_size_supported(bwrap: str) -> bool:
    """Whether this bubblewrap knows `--size` (0.7.0+); asked once per binary."""
    try:
        out = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--size" in out.stdout + out.stderr


def tmpfs_args(dest: str, size_mb: int, supported: bool) -> list[str]:
    if size_mb > 0 and supported:
        return ["--size", str(size_mb * 1024 * 1024), "--tmpfs", dest]
    return ["--tmpfs", dest]


def nproc_prefix(max_processes: int) -> list[str]:
    """Argv run inside the sandbox that sets RLIMIT_NPROC, then execs the command."""
    if max_processes <= 0:
        return []
    from workbench.core.sandbox_paths import which

    prlimit = which("prlimit")
    if prlimit:
        return [prlimit, f"--nproc={max_processes}:{max_processes}", "--"]
    return [sys.executable, "-I", "-S", "-c", _SET_NPROC_PY, str(max_processes)]


# ---------------------------------------------------------------------------- cgroups


def _own_cgroups() -> dict[str, str]:
    """controller ("" for v2) -> this process's cgroup path."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of cgroup mounts."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], rfields[0], rfields[2]))
    return found


def _writable_dir(p: Path) -> bool:
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


@functools.cache
def pids_cgroup_parent() -> Path | None:
    """A directory where per-session pids cgroups can be made, or None."""
    own = _own_cgroups()
    for mount, fstype, opts in _mounts():
        if fstype == "cgroup" and "pids" in opts.split(",") and "pids" in own:
            base = Path(mount) / own["pids"].lstrip("/")
            if _writable_dir(base):
                return base / CGROUP_DIR_NAME
        if fstype == "cgroup2" and "" in own:
            base = Path(mount) / own[""].lstrip("/")
            try:
                sub = (base / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            # A v2 cgroup that holds processes cannot enable controllers for children
            # (except the root), so only an already-delegated "pids" is usable.
            if "pids" in sub and _writable_dir(base):
                return base / CGROUP_DIR_NAME
    return None


def _prune(parent: Path, keep: Path) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        for d in parent.iterdir():
            if d != keep and d.is_dir():
                with contextlib.suppress(OSError):
                    if now - d.stat().st_mtime > _PRUNE_AFTER_S:
                        d.rmdir()  # fails (EBUSY) while processes are in it


# Cgroups this process made, with the pids.max it set: every spawn of a session asks
# again, and only a cgroup that vanished (pruned while idle) or a new limit needs the work.
_READY: dict[Path, int] = {}


def _cgroup_name(group: str) -> str:
    return hashlib.sha256(group.encode()).hexdigest()[:16]


def session_cgroup(group: str, max_processes: int) -> Path | None:
    """The `cgroup.procs` file of `group`'s pids cgroup (made, with pids.max set), or None
    when no pids cgroup is writable here."""
    parent = pids_cgroup_parent()
    if parent is None or max_processes <= 0:
        return None
    d = parent / _cgroup_name(group)
    if _READY.get(d) == max_processes and d.is_dir():
        return d / "cgroup.procs"
    try:
        if not parent.exists():
            parent.mkdir(mode=0o755)
            if (parent / "cgroup.subtree_control").exists():  # v2: hand pids to children
                (parent / "cgroup.subtree_control").write_text("+pids\n")
        d.mkdir(mode=0o755, exist_ok=True)
        (d / "pids.max").write_text(f"{max_processes}\n")
    except OSError:
        _READY.pop(d, None)
        return None
    _prune(parent, d)
    if len(_READY) > 4096:
        _READY.clear()
    _READY[d] = max_processes
    return d / "cgroup.procs"


def forget_cgroup(group: str) -> None:
    """`group`'s session is gone: drop what `session_cgroup` remembers of it (a long-lived
    daemon replacing sessions kept one entry per session it ever had) and remove its
    cgroup if nothing runs in it any more (else `_prune` does, later)."""
    parent = pids_cgroup_parent()
    if parent is None:
        return
    d = parent / _cgroup_name(group)
    _READY.pop(d, None)
    with contextlib.suppress(OSError):
        d.rmdir()


def join_cgroup_prefix(procs: Path) -> list[str]:
    return ["/bin/sh", "-c", _JOIN_CGROUP, "sh", str(procs)]


# ----------------------------------------------------------------------------- doctor


@dataclass(frozen=True)
class LimitsReport:
    tmp: str
    processes: str
    ok: bool


def describe(bwrap: str | None, tmp_size_mb: int, max_processes: int) -> LimitsReport:
    """What caps hold on this machine, for `workbench doctor`."""
    ok = True
    if tmp_size_mb <= 0:
        tmp = "/tmp and /run are not capped (sandbox.tmp_size_mb = 0)"
    elif bwrap and tmpfs_size_supported(bwrap):
        tmp = f"/tmp, /var/tmp and /run capped at {tmp_size_mb} MB each (bwrap --size)"
    else:
        ok = False
        tmp = ("/tmp and /run are NOT capped: this bubblewrap has no --size "
               "(needs 0.7+)")
    if max_processes <= 0:
        procs = "processes are not capped (sandbox.max_processes = 0)"
    else:
        parent = pids_cgroup_parent()
        ways = []
        if parent is not None:
            ways.append(f"cgroup pids.max under {parent}")
        if os.geteuid() != 0:
            ways.append("RLIMIT_NPROC in the sandbox's user namespace")
        if ways:
            procs = f"processes capped at {max_processes} ({'; '.join(ways)})"
        else:
            ok = False
            procs = ("processes are NOT capped: RLIMIT_NPROC does not bind root and no "
                     "pids cgroup is writable here")
    return LimitsReport(tmp, procs, ok)
