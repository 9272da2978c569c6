"""Remote hosts (issue 18): what a link costs, over a real sshd on 127.0.0.1.

References, same run, alternating:

- `workbench ls` (whole process) on a daemon with 5 local sessions and two hosts, one up
  (5 sessions there) and one down (a closed port), against `ls` on a daemon with the same
  5 local sessions and no hosts: a host, up or down, must not slow the listing;
- key to echo of a remote shell session through the local daemon and the link (`keys`,
  then `screen` until the text shows, on open connections), against the same on the remote
  daemon's own socket: the link's share (ssh over loopback, the bridge, one more daemon);
- a killed link back up (SIGKILL of its ssh process to the host listed `up` again), against
  a fresh `ssh HOST true` with the same config: the reconnect's own share.

The "remote" workbench is this same install with XDG directories of its own (as in
tests/test_remote_hosts.py). Run: .venv/bin/python benchmarks/remote_hosts.py [--quick]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import WORKBENCH, Result, Row, base_argparser, finish, make_repo, median, percentile
from tests.ssh_support import current_user, free_port, make_remote, missing_tools, start_sshd


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def env_for(root: Path) -> dict[str, str]:
    runtime = tempfile.mkdtemp(prefix="wbbr-", dir="/tmp")
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime, SHELL="/bin/bash",
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@example.com", GIT_CONFIG_NOSYSTEM="1")
    for name in ("config", "data", "state", "cache", "home"):
        (root / name).mkdir(parents=True, exist_ok=True)
        env["HOME" if name == "home" else f"XDG_{name.upper()}_HOME"] = str(root / name)
    return env


def wb(env: dict[str, str], *args: str) -> str:
    return subprocess.run([WORKBENCH, *args], env=env, check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120).stdout


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Any:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def client(env: dict[str, str]) -> Any:
    from workbench.daemon.client import Client

    with environ(env):
        return Client("bench", autostart=False, timeout=120)


def echo_ms(c: Any, sid: str, tag: str) -> float:
    t0 = time.perf_counter()
    c.call("keys", id=sid, text=f"echo {tag}\\r")
    while not any(line.strip() == tag for line in c.call("screen", id=sid)["lines"]):
        time.sleep(0.001)
    return (time.perf_counter() - t0) * 1000


def link_of(env: dict[str, str], name: str) -> dict[str, Any]:
    import json

    return next(h for h in json.loads(wb(env, "host", "ls", "--json")) if h["name"] == name)


def main() -> None:
    args = base_argparser(__doc__).parse_args()
    started = time.monotonic()
    res = Result("remote_hosts", "Remote hosts over ssh", args.quick)
    why = missing_tools()
    if why:
        res.available = False
        res.notes.append(why)
        finish(res, started, save=not args.no_save)
        return
    rounds, runs = (3, 5) if args.quick else (5, 10)
    root = Path(tempfile.mkdtemp(prefix="wb-bench-remote-"))
    sshd = start_sshd(root / "sshd", current_user())  # the tests log in as a user of their own
    remote = make_remote(root / "remote", {}, current_user())
    ref_env, wb_env = env_for(root / "ref"), env_for(root / "wb")
    try:
        res.notes.append(f"load average before: {loadavg()}")
        for env in (ref_env, wb_env):
            for i in range(5):
                repo = make_repo(root / f"repo-{id(env)}-{i}")
                wb(env, "new", "--repo", str(repo), "--agent", "shell", "--sandbox", "off")
        wb(wb_env, "host", "add", "dev", sshd.url, "--ssh-config", str(sshd.ssh_config),
           "--workbench", str(remote.wrapper))
        wb(wb_env, "host", "add", "gone", f"ssh://{sshd.user}@127.0.0.1:{free_port()}",
           "--ssh-config", str(sshd.ssh_config))
        sids = [wb(wb_env, "new", "--host", "dev", "--repo", str(make_repo(root / f"r{i}")), "--agent", "shell",
                   "--sandbox", "off").strip() for i in range(5)]
        while link_of(wb_env, "gone")["state"] != "down":
            time.sleep(0.05)

        # 1. ls, whole process
        ls: dict[str, list[float]] = {"ref": [], "wb": []}
        for _ in range(rounds):
            for _ in range(runs):
                ls["ref"].append(timed([WORKBENCH, "ls"], ref_env))
                ls["wb"].append(timed([WORKBENCH, "ls"], wb_env))
        res.add(Row("ls, 5 local + 5 remote sessions, one host down (median)", median(ls["wb"]), "ms",
                    median(ls["ref"]), "ls, 5 local, no hosts", median(ls["wb"]) / median(ls["ref"]), "<= 1.3 ratio",
                    detail=f"p99 {percentile(ls['wb'], 99):.1f} vs {percentile(ls['ref'], 99):.1f} ms"))

        # 2. key to echo through the link vs on the remote daemon's own socket
        far, near = client(wb_env), client(remote.env)
        sid = sids[0]
        rid = sid.split(":", 1)[1]
        echo: dict[str, list[float]] = {"direct": [], "link": []}
        n = 0
        for _ in range(rounds):
            for _ in range(runs):
                n += 1
                echo["direct"].append(echo_ms(near, rid, f"d{n}x{n * 7}"))
                echo["link"].append(echo_ms(far, sid, f"l{n}x{n * 7}"))
        far.close()
        near.close()
        res.add(Row("key to echo of a remote session via the link (median)", median(echo["link"]), "ms",
                    median(echo["direct"]), "on the remote daemon's socket",
                    median(echo["link"]) / median(echo["direct"]),
                    detail=f"p99 {percentile(echo['link'], 99):.1f} vs {percentile(echo['direct'], 99):.1f} ms"))

        # 3. a killed link back up vs a fresh ssh connection
        heal: list[float] = []
        fresh: list[float] = []
        ssh_true = ["ssh", "-F", str(sshd.ssh_config), "-o", "BatchMode=yes", "-p", str(sshd.port),
                    f"{sshd.user}@127.0.0.1", "true"]
        for _ in range(rounds):
            fresh.append(timed(ssh_true, wb_env))
            pid = link_of(wb_env, "dev")["pid"]
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            while (h := link_of(wb_env, "dev"))["state"] != "up" or h["pid"] == pid:
                time.sleep(0.01)
            heal.append((time.perf_counter() - t0) * 1000)
        res.add(Row("killed link up again (median)", median(heal), "ms", median(fresh), "ssh HOST true",
                    median(heal) / median(fresh),
                    detail=f"max {max(heal):.0f} vs {max(fresh):.0f} ms; includes the 0.5 s first backoff "
                           "and `host ls` polling"))
        res.notes.append(f"load average after: {loadavg()}")
    finally:
        for env in (wb_env, ref_env):
            subprocess.run([WORKBENCH, "daemon", "stop"], env=env, capture_output=True, timeout=60)
            shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)
        remote.stop()
        sshd.stop()
        shutil.rmtree(root, ignore_errors=True)
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
