"""Shared harness for the benchmarks: isolated daemons, machine facts, result files.

Every benchmark is a separate process started by run_all.py (or by hand). It calls
`isolated()` once: that points XDG_*, HOME and git's identity at a fresh temp directory,
so its daemon, store and worktrees are its own and vanish afterwards. `Daemon` starts and
stops that daemon and kills anything a session left behind, by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
PYTHON = sys.executable
WORKBENCH = str(Path(PYTHON).with_name("workbench"))


# --- numbers -----------------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); enough for a few hundred samples."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return float(s[k])


# --- results -----------------------------------------------------------------------------


@dataclass
class Row:
    """One comparison: workbench beside a reference measured in the same run.

    `ratio` is workbench / reference as the issue defines it; `goal` says which way is good
    (e.g. ">= 1.0" for speed ratios, "<= 1.5" for time ratios, "< 50 ms" for absolutes).
    """

    metric: str
    workbench: float | None
    unit: str
    reference: float | None = None
    ref_name: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    detail: str = ""


@dataclass
class Result:
    name: str
    title: str
    quick: bool
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    available: bool = True

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def save(self) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path


def check_goal(value: float | None, goal: str) -> bool | None:
    """Evaluate a goal such as '>= 1.0', '<= 1.5' or '< 50' against a value."""
    if value is None or not goal:
        return None
    m = re.match(r"\s*(<=|>=|<|>)\s*([0-9.]+)", goal)
    if not m:
        return None
    op, limit = m.group(1), float(m.group(2))
    return {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        ">": value > limit,
    }[op]


def print_result(res: Result) -> None:
    print(f"== {res.title} ({res.seconds:.0f} s{', quick' if res.quick else ''})")
    for r in res.rows:
        ref = f"  {r.ref_name}={r.reference:.4g}" if r.reference is not None else ""
        ratio = f"  ratio={r.ratio:.2f}" if r.ratio is not None else ""
        goal = f"  goal {r.goal}: {'met' if r.met else 'MISSED'}" if r.met is not None else ""
        wb = f"{r.workbench:.4g}" if r.workbench is not None else "n/a"
        print(f"  {r.metric}: workbench={wb} {r.unit}{ref}{ratio}{goal}")
    for n in res.notes:
        print(f"  note: {n}")


# --- machine -----------------------------------------------------------------------------


def _cmd_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    from importlib import metadata

    def pkg(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tmux": _cmd_version(["tmux", "-V"]),
        "git": _cmd_version(["git", "--version"]),
        "bwrap": _cmd_version(["bwrap", "--version"]),
        "pyghostty": pkg("pyghostty"),
        "textual": pkg("textual"),
        "workbench": pkg("workbench"),
    }


def sandbox_ok() -> bool:
    try:
        from workbench.core import sandbox_probe

        return bool(sandbox_probe.probe().ok)
    except Exception:
        return False


# --- isolation ---------------------------------------------------------------------------


@contextlib.contextmanager
def isolated(prefix: str) -> Iterator[Path]:
    """A private temp root with XDG dirs, HOME and git identity set in os.environ."""
    root = Path(tempfile.mkdtemp(prefix=f"wb-bench-{prefix}-"))
    saved = dict(os.environ)
    try:
        for name in ("config", "data", "state", "cache", "runtime", "home"):
            (root / name).mkdir(mode=0o700)
        os.environ.update(
            XDG_CONFIG_HOME=str(root / "config"),
            XDG_DATA_HOME=str(root / "data"),
            XDG_STATE_HOME=str(root / "state"),
            XDG_CACHE_HOME=str(root / "cache"),
            XDG_RUNTIME_DIR=str(root / "runtime"),
            HOME=str(root / "home"),
            SHELL="/bin/bash",
            GIT_AUTHOR_NAME="bench",
            GIT_AUTHOR_EMAIL="bench@example.com",
            GIT_COMMITTER_NAME="bench",
            GIT_COMMITTER_EMAIL="bench@example.com",
            GIT_CONFIG_NOSYSTEM="1",
        )
        for var in ("GIT_DIR", "GIT_WORK_TREE", "TMUX", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
            os.environ.pop(var, None)
        yield root
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, files: int = 1, lines: int = 5) -> Path:
    """A git repo on `main` with `files` small files in one commit (spread over dirs)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(files):
        f = path / f"d{i % 100:02d}" / f"f{i}.txt"
        f.parent.mkdir(exist_ok=True)
        f.write_text("".join(f"line {j} of file {i}\n" for j in range(lines)))
    if files == 0:
        (path / "README").write_text("bench\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


# --- processes ---------------------------------------------------------------------------


def _proc_env(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _proc_cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def processes_under(root: Path) -> list[int]:
    """Pids (not ours) whose environment or working directory points inside `root`."""
    marker = str(root).encode()
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if marker in _proc_env(pid) or _proc_cwd(pid).startswith(str(root)):
            out.append(pid)
    return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (by parent links), to count what the daemon spawned."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class Daemon:
    """The workbench daemon of the current isolated environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pid = 0
        self.spy: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        from workbench.daemon.client import Client

        with Client("bench") as c:
            self.pid = int(c.info["pid"])
        self._profile()
        return self

    def _profile(self) -> None:
        """With WB_BENCH_PROFILE=DIR, record the daemon with py-spy (raw stacks) into DIR."""
        target = os.environ.get("WB_BENCH_PROFILE")
        spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
        if not target or not os.path.exists(spy):
            return
        Path(target).mkdir(parents=True, exist_ok=True)
        out = Path(target) / f"{Path(sys.argv[0]).stem}-{self.pid}.txt"
        self.spy = subprocess.Popen(
            [spy, "record", "-p", str(self.pid), "-o", str(out), "-f", "raw", "-r", "250"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self, name: str = "bench") -> Any:
        from workbench.daemon.client import Client

        return Client(name, autostart=False, timeout=120)

    def call(self, method: str, **params: Any) -> Any:
        with self.client() as c:
            return c.call(method, **params)

    def stop(self) -> list[int]:
        """Stop the daemon; kill (by pid) and return anything of ours still alive."""
        from workbench.daemon.client import stop_daemon

        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.spy.wait(20)
        with contextlib.suppress(Exception):
            stop_daemon(timeout=20)
        left: list[int] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            left = processes_under(self.root)
            if not left:
                break
            time.sleep(0.1)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return left

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        left = self.stop()
        if left:
            print(f"warning: killed {len(left)} leftover process(es): {left}", file=sys.stderr)


def wait_for(pred: Any, timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def row_text(runs: list[Any]) -> str:
    return "".join(r[0] for r in runs)


def new_session(
    d: Daemon, repo: Path, agent: str, *, sandbox: str | None = None, size: tuple[int, int] | None = None,
    in_place: bool = False, name: str | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"repo": str(repo), "agent": agent, "in_place": in_place}
    if sandbox:
        params["sandbox"] = sandbox
    if size:
        params["cols"], params["rows"] = size
    if name:
        params["name"] = name
    result: dict[str, Any] = d.call("new", **params)
    return result


def base_argparser(doc: str | None) -> Any:
    import argparse

    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats: a smoke run")
    p.add_argument("--no-save", action="store_true", help="print only; do not write benchmarks/out")
    return p


def finish(res: Result, started: float, save: bool = True) -> None:
    res.seconds = time.monotonic() - started
    for r in res.rows:
        if r.met is None and r.goal:
            value = r.ratio if r.ratio is not None and "ratio" in r.goal else r.workbench
            r.met = check_goal(value, r.goal.replace("ratio", ""))
    print_result(res)
    if save:
        res.save()
