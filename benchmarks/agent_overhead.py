"""Agent overhead: a 200-turn scripted task of the built-in agent against the fake server.

The fake OpenAI server (in this process) answers 199 turns with one `shell` tool call
each (`true`) and a last turn with plain text. The session runs `--agent builtin
--approval full-auto`. Per turn, the wall time splits into:

- server: the fake server handling the request, first byte read to last byte written;
- command: the sandboxed command, from the `tool_call` to the `tool_output` entry in the
  session's transcript (spawning bubblewrap, running `true`, collecting output);
The clock runs from the first request reaching the server to the transcript entry of
the final answer (the daemon's own timestamp).

- workbench's own: everything else (building the request, parsing the stream, the
  transcript and store writes, pushing events).

Run: .venv/bin/python benchmarks/agent_overhead.py [--quick] [--turns N]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
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
    sandbox_ok,
)

FINAL = "All done, bench."


def builtin_available() -> str:
    """'' when `--agent builtin` can run, else why not."""
    try:
        from workbench.daemon import agent_ext  # noqa: F401
        from workbench.daemon.extensions import EXTENSIONS
        from workbench.fakes import model_server  # noqa: F401
    except Exception as e:
        return f"the built-in agent does not import ({type(e).__name__}: {e})"
    if "workbench.daemon.agent_ext" not in EXTENSIONS:
        return "the built-in agent is not registered with the daemon"
    return ""


class TimedFake:
    """FakeOpenAI whose request handling is timed."""

    def __init__(self, turns: int) -> None:
        from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

        script = [
            Turn(tool_calls=[ScriptedToolCall("shell", json.dumps({"command": ["true"]}))])
            for _ in range(turns - 1)
        ]
        script.append(Turn(text=FINAL))
        self.fake = FakeOpenAI([Script(match="", turns=script)])
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        serve = self.fake._serve

        def timed(*args: Any, **kwargs: Any) -> None:
            t0 = time.time()
            try:
                serve(*args, **kwargs)
            finally:
                with self._lock:
                    self.spans.append((t0, time.time()))

        self.fake._serve = timed  # type: ignore[method-assign]

    def __enter__(self) -> TimedFake:
        self.fake.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.fake.stop()


def run_task(d: Daemon, repo: Path, fake: TimedFake, turns: int, sandbox: str) -> dict[str, Any]:
    with d.client("bench-agent") as c:
        c.call("subscribe", all=True)
        s = c.call("new", repo=str(repo), agent="builtin", approval="full-auto",
                   sandbox=sandbox, prompt="run true many times", name=f"agent-{sandbox}")
        sid = s["id"]
        deadline = time.monotonic() + (60 + turns * 2)
        end: float | None = None
        while end is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the agent did not finish ({len(fake.spans)} requests)")
            ev = c.next_event(timeout=1)
            if not ev or ev.get("event") != "log":
                continue
            data = ev["data"]
            if data.get("session") == sid and data.get("kind") == "assistant" \
                    and FINAL in str(data["data"].get("text")):
                end = float(data["ts"])
        log = c.call("log", id=sid)
    spans = sorted(fake.spans)
    calls = {e["data"].get("call_id"): e["ts"] for e in log if e["kind"] == "tool_call"}
    cmd = [e["ts"] - calls[e["data"].get("call_id")] for e in log
           if e["kind"] == "tool_output" and e["data"].get("call_id") in calls]
    total = end - spans[0][0]
    server = sum(b - a for a, b in spans)
    return {"total": total, "server": server, "command": sum(cmd), "requests": len(spans),
            "commands": len(cmd), "cmd_median": median(cmd), "sid": sid}


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--turns", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    turns = args.turns or (20 if args.quick else 200)
    res = Result("agent_overhead", "7. Agent overhead", args.quick)
    why = builtin_available()
    if why:
        res.available = False
        res.add(Row("workbench's own time per turn", None, "ms", goal="< 5",
                    detail="not available yet"))
        res.notes.append(f"not available yet: {why}")
        print(f"agent overhead: not available yet: {why}")
        finish(res, started, save=not args.no_save)
        return
    sandbox = "workspace" if sandbox_ok() else "off"
    with isolated("agent") as root:
        cfg = root / "config" / "workbench"
        cfg.mkdir(parents=True)
        # The scripted task is longer than the default turn limit.
        cfg.joinpath("config.toml").write_text(f"[agent]\nmax_turns = {turns + 50}\n")
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        os.environ["OPENAI_MODEL"] = "fake-model"
        repo = make_repo(root / "repo")
        try:
            with TimedFake(turns) as fake:
                # The daemon inherits the provider settings from its environment at start.
                os.environ["OPENAI_BASE_URL"] = fake.fake.base_url
                with Daemon(root) as d:
                    r = run_task(d, repo, fake, turns, sandbox)
        except Exception as e:
            res.available = False
            res.add(Row("workbench's own time per turn", None, "ms", goal="< 5",
                        detail="not available yet"))
            res.notes.append(f"not available yet: the built-in agent did not run the task: {e}")
            print(f"agent overhead: not available yet: {e}")
            finish(res, started, save=not args.no_save)
            return
    n = r["requests"]
    own = (r["total"] - r["server"] - r["command"]) / n * 1000
    res.add(Row("workbench's own time per turn", own, "ms", goal="< 5"))
    res.add(Row("fake server time per turn", r["server"] / n * 1000, "ms"))
    res.add(Row("sandboxed command per tool call", r["command"] / max(1, r["commands"]) * 1000,
                "ms", detail=f"median {r['cmd_median'] * 1000:.1f} ms"))
    res.add(Row("wall time per turn", r["total"] / n * 1000, "ms"))
    res.notes.append(f"{n} model requests, {r['commands']} tool calls, sandbox={sandbox}, "
                     "chat completions wire API, streaming")
    res.extra = {k: v for k, v in r.items() if k != "sid"}
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
