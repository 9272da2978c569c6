"""Session start: `workbench new` to a ready shell prompt, in a repo of 10,000 files.

Reference, same run and same repo: plain `git worktree add -b BRANCH PATH` (what any
worktree-per-task tool must do at least).

Timed for workbench: the `workbench new --agent shell` CLI process (Python start-up and
all) until a client subscribed to every session's frames sees the shell's prompt on the
new session's screen. Also reported without the CLI process (the `new` socket call), and
with the sandbox both on (`workspace`, when bubblewrap works here) and off.

Run: .venv/bin/python benchmarks/session_start.py [--quick] [--repeat N]
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    WORKBENCH,
    Daemon,
    Result,
    Row,
    base_argparser,
    finish,
    git,
    isolated,
    make_repo,
    median,
    row_text,
    sandbox_ok,
)


def wait_prompt(c: Any, sid: str | None, timeout: float = 30) -> str:
    """Wait for a frame (of `sid`, or of any session when None) whose cursor sits after a
    prompt: the cursor row ends in `$ ` or `# ` (bash's default, Debian's, root's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = c.next_event(timeout=max(0.01, deadline - time.monotonic()))
        if ev is None or ev.get("event") != "frame":
            continue
        data = ev["data"]
        if sid is not None and data.get("session") != sid:
            continue
        x, y = data["cursor"][0], data["cursor"][1]
        row = data["rows"].get(str(y))
        text = row_text(row) if row is not None else ""
        if x > 0 and text.rstrip().endswith(("$", "#")) and len(text.rstrip()) < x:
            return str(data["session"])
    raise RuntimeError("no shell prompt within the timeout")


def start_cli(d: Daemon, repo: Path, sandbox: str, n: int) -> float:
    with d.client("bench-frames") as c:
        c.call("subscribe", all=True, frames=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [WORKBENCH, "new", "--repo", str(repo), "--agent", "shell", "--sandbox", sandbox,
             "--name", f"cli-{sandbox}-{n}"],
            capture_output=True, text=True, check=True,
        )
        sid = proc.stdout.strip().splitlines()[-1]
        # Frames of other sessions may arrive first; the prompt must be the new one's.
        while wait_prompt(c, None) != sid:
            pass
        elapsed = time.perf_counter() - t0
    d.call("rm", id=sid)
    return elapsed


def start_socket(d: Daemon, repo: Path, sandbox: str, n: int) -> float:
    with d.client("bench-frames") as c:
        c.call("subscribe", all=True, frames=True)
        t0 = time.perf_counter()
        s = c.call("new", repo=str(repo), agent="shell", sandbox=sandbox, name=f"sock-{sandbox}-{n}")
        wait_prompt(c, s["id"])
        elapsed = time.perf_counter() - t0
    d.call("rm", id=s["id"])
    return elapsed


def git_worktree(repo: Path, root: Path, n: int) -> float:
    path = root / f"plain-wt-{n}"
    t0 = time.perf_counter()
    git(repo, "worktree", "add", "-q", "-b", f"plain/{n}", str(path), "HEAD")
    elapsed = time.perf_counter() - t0
    git(repo, "worktree", "remove", "--force", str(path))
    git(repo, "branch", "-D", f"plain/{n}")
    return elapsed


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--repeat", type=int, default=0)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    started = time.monotonic()
    repeat = args.repeat or (2 if args.quick else 5)
    files = 2_000 if args.quick and args.files == 10_000 else args.files
    modes = ["workspace", "off"] if sandbox_ok() else ["off"]
    res = Result("session_start", "3. Session start", args.quick)
    with isolated("start") as root:
        repo = make_repo(root / "repo", files=files, lines=20)
        samples: dict[str, list[float]] = {"git": []}
        with Daemon(root) as d:
            # Warm the page cache and the daemon's imports once, untimed.
            start_socket(d, repo, "off", -1)
            for n in range(repeat):
                samples["git"].append(git_worktree(repo, root, n))
                for mode in modes:
                    samples.setdefault(f"cli-{mode}", []).append(start_cli(d, repo, mode, n))
                    samples.setdefault(f"socket-{mode}", []).append(start_socket(d, repo, mode, n))
        ref = median(samples["git"])
        for mode in modes:
            for how in ("cli", "socket"):
                wb = median(samples[f"{how}-{mode}"])
                what = "`workbench new`" if how == "cli" else "`new` socket call"
                res.add(Row(f"{what} to prompt, sandbox={mode}, {files} files", wb * 1000, "ms",
                            ref * 1000, "git worktree add", wb / ref,
                            "<= 1.5 ratio" if how == "cli" else ""))
    res.notes.append(f"median of {repeat} runs each; worktrees removed between runs (untimed)")
    res.extra = {k: [round(x * 1000, 1) for x in v] for k, v in samples.items()}
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
