"""Tool-call overhead: what a built-in agent's sandboxed command costs beyond the sandbox.

A built-in session (`--approval full-auto`, sandbox `workspace` when bubblewrap works)
runs a scripted task from the fake OpenAI server: K `shell` tool calls of `true`, then a
final answer. Per call, the daemon's transcript times the tool call from its `tool_call`
entry to its `tool_output` entry (the daemon's own clock: preparing the sandbox,
spawning, collecting the output, recording).

The reference is the sandbox's own start: the very bwrap argv the daemon builds for that
session (`daemon.sandboxing.sandbox_command`, called in this process for the same session
and XDG directories), spawned directly with `true`, timed from spawn to exit. Rounds
alternate: one agent session of K calls, then K reference runs, at least 3 rounds.
overhead = median(tool call) - median(reference).

Run: .venv/bin/python benchmarks/tool_call.py [--quick] [--rounds N] [--calls K]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    Daemon,
    Result,
    Row,
    base_argparser,
    finish,
    isolated,
    make_repo,
    median,
    percentile,
    sandbox_ok,
)

FINAL = "All done, bench."


def fake_server(calls: int, rounds: int) -> Any:
    """One server for all rounds (the daemon reads its endpoint at start): a script a round."""
    from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

    def script() -> list[Turn]:
        turns = [
            Turn(tool_calls=[ScriptedToolCall("shell", json.dumps({"command": ["true"]}))])
            for _ in range(calls)
        ]
        return [*turns, Turn(text=FINAL)]

    return FakeOpenAI([Script(match=f"round-{i}:", turns=script()) for i in range(rounds)])


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: unlike wall time, not stretched by
    other work on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agent_round(d: Daemon, repo: Path, sandbox: str, name: str) -> tuple[list[float], dict[str, Any]]:
    """Per-call seconds (tool_call -> tool_output) of one scripted session, and the session."""
    with d.client("bench-tool") as c:
        c.call("subscribe", all=True)
        s = c.call("new", repo=str(repo), agent="builtin", approval="full-auto",
                   sandbox=sandbox, prompt=f"{name}: run true many times", name=name)
        sid = s["id"]
        deadline = time.monotonic() + 300
        done = False
        while not done:
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not finish its scripted task")
            ev = c.next_event(timeout=1)
            if not ev or ev.get("event") != "log":
                continue
            data = ev["data"]
            done = data.get("session") == sid and data.get("kind") == "assistant" \
                and FINAL in str(data["data"].get("text"))
        log = c.call("log", id=sid)
        info = c.call("get", id=sid)
    started = {e["data"].get("call_id"): e["ts"] for e in log if e["kind"] == "tool_call"}
    per_call = [e["ts"] - started[e["data"]["call_id"]] for e in log
                if e["kind"] == "tool_output" and e["data"].get("call_id") in started]
    return per_call, info


class _Table:
    """What `sandbox_command` reads of the session manager: the other sessions (none)."""

    sessions: dict[str, Any] = {}


def reference_runs(info: dict[str, Any], runs: int) -> list[float]:
    """Seconds of `true` run directly with the argv the daemon builds for this session."""
    from workbench.core.models import Session
    from workbench.daemon.sandboxing import sandbox_command

    s = Session.from_dict(info)
    out: list[float] = []
    for _ in range(runs):
        cmd = sandbox_command(_Table(), s, ["true"], new_session=True)  # type: ignore[arg-type]
        argv, env, fds = list(cmd.argv), dict(cmd.env), tuple(getattr(cmd, "pass_fds", ()))
        t0 = time.monotonic()
        subprocess.run(argv, env=env, cwd=s.worktree, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       start_new_session=True, pass_fds=fds, check=True)
        out.append(time.monotonic() - t0)
        with contextlib.suppress(Exception):
            cmd.close()
    return out


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--calls", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    rounds = args.rounds or 3
    calls = args.calls or (20 if args.quick else 60)
    res = Result("tool_call", "10. Tool-call overhead", args.quick)
    sandbox = "workspace" if sandbox_ok() else "off"
    load = os.getloadavg()
    tool: list[float] = []
    ref: list[float] = []
    daemon_cpu: list[float] = []
    with isolated("tool") as root:
        cfg = root / "config" / "workbench"
        cfg.mkdir(parents=True)
        cfg.joinpath("config.toml").write_text(f"[agent]\nmax_turns = {calls + 50}\n")
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        os.environ["OPENAI_MODEL"] = "fake-model"
        repo = make_repo(root / "repo", files=200)
        fake = fake_server(calls, rounds)
        fake.start()
        os.environ["OPENAI_BASE_URL"] = fake.base_url
        with Daemon(root) as d:
            for i in range(rounds):
                cpu0 = cpu_s(d.pid)
                per_call, info = agent_round(d, repo, sandbox, f"round-{i}")
                # Everything the daemon did for the round (model turns, calls, the session's
                # start) over its calls: an upper bound of one call's CPU.
                daemon_cpu.append((cpu_s(d.pid) - cpu0) / max(len(per_call), 1))
                # The first call prepares the session's sandbox (cached after): report it apart.
                tool.extend(per_call[1:])
                ref.extend(reference_runs(info, len(per_call)))
                d.call("rm", id=info["id"])
        fake.stop()
    over = median(tool) - median(ref)
    res.add(Row("tool call (tool_call -> tool_output), median", median(tool) * 1000, "ms",
                reference=median(ref) * 1000, ref_name="same bwrap argv, spawned directly"))
    res.add(Row("tool call p99", percentile(tool, 99) * 1000, "ms",
                reference=percentile(ref, 99) * 1000, ref_name="same bwrap argv, spawned directly"))
    res.add(Row("overhead beyond the sandbox's own start (median difference)", over * 1000, "ms",
                goal="< 5"))
    res.add(Row("daemon CPU per call (whole round / calls, incl. model turns)", median(daemon_cpu) * 1000,
                "ms"))
    res.notes.append(f"{rounds} rounds x {calls} calls (the first call of each session, which "
                     f"prepares its sandbox, left out), sandbox={sandbox}, load before "
                     f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
