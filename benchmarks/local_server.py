"""A local server that refuses streamed tool calls: a built-in task's wall time, negotiated.

Each round runs the same scripted task twice through the CLI (`workbench new --agent builtin
--base-url URL --model M --approval full-auto`): once against a fake server that streams
(the reference) and once against one that answers a streamed request offering tools with
llama-cpp-python's HTTP 500 "Automatic streaming tool choice is not supported". The second
costs one refused request, then every turn goes unstreamed. Each run gets a fresh server
(a new base URL), so the daemon negotiates every time; the order alternates per round.
The clock runs from starting `workbench new` to the transcript entry of the final answer
(the daemon's timestamp).

Run: .venv/bin/python benchmarks/local_server.py [--quick] [--turns N] [--rounds N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    PYTHON,
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


def run_task(d: Daemon, repo: Path, turns: int, refuse: bool, sandbox: str) -> float:
    """Seconds from `workbench new` to the final answer in the transcript."""
    from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

    call = ScriptedToolCall("shell", json.dumps({"command": ["true"]}))
    script = [Turn(tool_calls=[call]) for _ in range(turns - 1)] + [Turn(text=FINAL)]
    with FakeOpenAI([Script("", script)], refuse_streamed_tools=refuse) as fake:
        t0 = time.time()
        out = subprocess.run(
            [PYTHON, "-m", "workbench", "new", "--repo", str(repo), "--agent", "builtin",
             "--approval", "full-auto", "--sandbox", sandbox, "--base-url", fake.base_url,
             "--model", "bench-model", "--prompt", "run true until done"],
            capture_output=True, text=True, check=True, timeout=120,
        )
        sid = out.stdout.strip()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            entries = d.call("log", id=sid)
            done = [e for e in entries if e["kind"] == "assistant" and e["data"].get("text") == FINAL]
            if done:
                notices = sum(1 for e in entries if e["kind"] == "notice")
                if refuse != bool(notices) or fake.violations:
                    raise RuntimeError(f"unexpected run: notices={notices} violations={fake.violations}")
                d.call("rm", id=sid)
                return float(done[0]["ts"]) - t0
            time.sleep(0.05)
    raise RuntimeError(f"session {sid} did not finish")


def main() -> None:
    parser = base_argparser(__doc__)
    parser.add_argument("--turns", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args()
    turns = args.turns or (10 if args.quick else 30)
    rounds = max(3, args.rounds or (3 if args.quick else 5))
    started = time.monotonic()
    res = Result("local_server", "8. A local server refusing streamed tools", args.quick)
    sandbox = "workspace" if sandbox_ok() else "off"
    load_before = os.getloadavg()
    times: dict[bool, list[float]] = {False: [], True: []}
    with isolated("wb-bench-local-") as root:
        repo = make_repo(root / "repo")
        with Daemon(root) as d:
            run_task(d, repo, 2, False, sandbox)  # warm-up: imports, the first sandbox
            for i in range(rounds):
                for refuse in ((False, True) if i % 2 == 0 else (True, False)):
                    times[refuse].append(run_task(d, repo, turns, refuse, sandbox))
    load_after = os.getloadavg()
    ref, wb = times[False], times[True]
    res.add(Row(f"{turns}-turn task, median", median(wb), "s", median(ref), "streaming server",
                ratio=median(wb) / median(ref), goal="ratio <= 1.2"))
    res.add(Row(f"{turns}-turn task, p99", percentile(wb, 99), "s", percentile(ref, 99), "streaming server",
                ratio=percentile(wb, 99) / percentile(ref, 99)))
    res.add(Row("per turn, median", median(wb) / turns * 1000, "ms", median(ref) / turns * 1000,
                "streaming server", ratio=median(wb) / median(ref)))
    res.notes.append(f"sandbox {sandbox}; {rounds} rounds alternating; runs (s): refusing "
                     f"{[round(x, 3) for x in wb]}, streaming {[round(x, 3) for x in ref]}")
    res.notes.append(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    res.extra = {"turns": turns, "rounds": rounds, "refusing_s": wb, "streaming_s": ref,
                 "load_before": load_before, "load_after": load_after, "sandbox": sandbox}
    finish(res, started, save=not args.no_save)


if __name__ == "__main__":
    main()
