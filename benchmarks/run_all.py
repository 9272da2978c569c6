"""Run every benchmark and rewrite docs/performance.md from their results.

Each benchmark runs as its own process (its own temp XDG dirs and daemon), writes
benchmarks/out/NAME.json and its log to benchmarks/out/NAME.log. Benchmarks report; they
never fail the build: a benchmark that crashes is shown as such in the document. One that
runs over its time is interrupted, then killed, and the daemon it left is stopped.

The part of docs/performance.md below the line `<!-- hand-written -->` (analysis,
profiles, before/after of optimisations) is kept as it is; everything above is generated.

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME,NAME] [--no-doc]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import OUT, PYTHON, ROOT, Result, Row, check_goal, machine_info

DOC = ROOT / "docs" / "performance.md"
MARK = "<!-- hand-written -->"
HERE = ROOT / "benchmarks"

# (result name, script, seconds allowed). Ordered cheap-and-independent first.
BENCHES: list[tuple[str, str, int]] = [
    ("throughput", "throughput.py", 240),
    ("responsiveness", "responsiveness.py", 150),
    ("session_start", "session_start.py", 360),
    ("diff", "bench_diff.py", 150),
    ("scale", "scale.py", 240),
    ("startup", "startup.py", 120),
    ("agent_overhead", "agent_overhead.py", 150),
    ("local_server", "local_server.py", 150),
    ("cli_latency", "cli_latency.py", 600),
    ("tool_call", "tool_call.py", 300),
    ("memory", "memory.py", 1500),
    ("echo_under_load", "echo_under_load.py", 300),
    ("diff_e2e", "diff_e2e.py", 600),
    ("suggest_scan", "suggest_scan.py", 300),
    ("remote_hosts", "remote_hosts.py", 300),
]
TITLES = {
    "throughput": "1. Terminal throughput",
    "responsiveness": "2. Responsiveness under load",
    "session_start": "3. Session start",
    "diff": "4. Diff",
    "scale": "5. Scale and memory",
    "startup": "6. Start-up",
    "agent_overhead": "7. Agent overhead",
    "local_server": "8. A local server refusing streamed tools",
    "cli_latency": "9. CLI latency",
    "tool_call": "10. Tool-call overhead",
    "memory": "11. Memory",
    "echo_under_load": "12. Key echo through the UI under load, vs tmux",
    "diff_e2e": "13. Diff end to end, vs git diff",
    "suggest_scan": "14. Suggestions: scanning 5,000 TODOs",
    "remote_hosts": "15. Remote hosts over ssh (ls, echo through the link, reconnect)",
}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


_DIFF_LINE = re.compile(r"^(?P<name>[^:]+):\s+(?P<ms>[0-9.]+) ms(?:\s+\((?P<x>[0-9.]+)x git diff\))?")


def diff_result(stdout: str, quick: bool) -> Result:
    """bench_diff.py prints lines; turn them into rows (git diff is the reference)."""
    res = Result("diff", TITLES["diff"], quick)
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith("change:"):
            res.notes.append(line.strip())
            continue
        m = _DIFF_LINE.match(line.strip())
        if m:
            values[m.group("name").strip()] = float(m.group("ms"))
    git = next((v for k, v in values.items() if k.startswith("git diff")), None)
    first = "first page (JSON)" if "first page (JSON)" in values else "compute_diff"
    for name, ms in values.items():
        if name.startswith("git diff"):
            continue
        ratio = ms / git if git and name != "parse_unified" and "every line" not in name else None
        goal = "<= 2 ratio" if name == first else ""
        label = "time to first displayable diff" if name == first else name
        if name == first:
            label += f" ({name})"
        res.add(Row(label, ms, "ms", git, "git diff", ratio, goal))
    for r in res.rows:
        if r.goal and r.ratio is not None:
            r.met = check_goal(r.ratio, r.goal.replace("ratio", ""))
    if not values:
        res.available = False
        res.notes.append("bench_diff.py printed no timings")
    return res


def stray_daemons() -> list[tuple[int, str]]:
    """Stop the daemons a killed benchmark left behind: those whose XDG runtime dir is in a
    benchmark's private temp root (`benchlib.isolated`), which only a run in progress has,
    and benchmarks run one at a time here. The root is removed after its daemon."""
    prefix = os.path.join(tempfile.gettempdir(), "wb-bench-")
    found: list[tuple[int, str]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"workbench" not in argv or b"daemon" not in argv:
            continue
        runtime = next((e[len(b"XDG_RUNTIME_DIR="):].decode() for e in env
                        if e.startswith(b"XDG_RUNTIME_DIR=")), "")
        if runtime.startswith(prefix):
            found.append((int(proc.name), str(Path(runtime).parent)))
    for pid, _ in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid, root in found:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    return found


def cpu_busy(seconds: float) -> float:
    """The machine's CPU use over `seconds` (0..1 of all cores), from /proc/stat."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def settle(limit: float = 60.0) -> str:
    """Wait until the previous benchmark's leftovers (exiting sandboxes, page-cache
    writeback) are done: two quiet seconds in a row (under 25% of the CPU), at most `limit`."""
    started = time.monotonic()
    quiet = 0
    busy = 1.0
    while time.monotonic() - started < limit:
        busy = cpu_busy(1.0)
        quiet = quiet + 1 if busy < 0.25 else 0
        if quiet >= 2:
            break
    return f"waited {time.monotonic() - started:.0f} s for a quiet machine (CPU {busy:.0%} busy)"


def run_one(name: str, script: str, limit: int, quick: bool) -> dict[str, Any]:
    path = HERE / script
    log = OUT / f"{name}.log"
    waited = settle()
    started = time.monotonic()
    load = loadavg()
    if not path.exists():
        return {"name": name, "ok": False, "why": f"{script} does not exist yet", "seconds": 0,
                "load": load}
    (OUT / f"{name}.json").unlink(missing_ok=True)
    if script == "bench_diff.py":
        argv = [PYTHON, str(path), "--runs", "1" if quick else "3"]
    else:
        argv = [PYTHON, str(path), *(["--quick"] if quick else [])]
    if script == "memory.py":
        # The two-hour soak runs on its own (`memory.py --soak-minutes 120`); here a short one.
        argv += ["--soak-minutes", "1" if quick else "5"]
    print(f"-- {name}: {' '.join(argv[1:])} (load {load}; {waited})", flush=True)
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, text=True)
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            # SIGINT lets the benchmark's context managers stop its daemon and sessions.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = -1
            sink.write(f"\n(timed out after {limit} s)\n")
            for pid, root in stray_daemons():
                sink.write(f"(stopped daemon {pid} it left running in {root})\n")
    out = log.read_text()
    seconds = time.monotonic() - started
    tail = "\n".join(out.strip().splitlines()[-12:])
    print(tail, flush=True)
    if script == "bench_diff.py" and code == 0:
        res = diff_result(out, quick)
        res.seconds = seconds
        res.save()
    ok = code == 0 and (OUT / f"{name}.json").exists()
    return {"name": name, "ok": ok, "why": "" if ok else f"exit {code}: {tail[-300:]}",
            "seconds": seconds, "load": load, "waited": waited}


# --- the document -----------------------------------------------------------------------


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if unit in ("fds", "processes"):
        return f"{v:.0f}"
    a = abs(v)
    s = f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"
    return s


def render(results: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]],
           machine: dict[str, str], quick: bool, total: float, kept: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Generated by `make bench` (`benchmarks/run_all.py`); do not edit above the",
        "hand-written section. Every number compares workbench with a reference measured in",
        "the same run on the same inputs; ratio = workbench / reference. See",
        "`benchmarks/README.md` for what each benchmark does and how to run one alone.",
        "",
        f"Run: {now}, {'QUICK smoke run (small sizes, not representative)' if quick else 'full run'},"
        f" {total:.0f} s in all.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    for k in ("nproc", "cpu", "ram", "kernel", "python", "tmux", "git", "bwrap", "pyghostty",
              "textual", "workbench"):
        lines.append(f"| {k} | {machine.get(k, '?')} |")
    lines += [
        "",
        "The load average column below is the machine's before each benchmark started: on a",
        "shared 2-core machine, anything above ~1 means other work competed for the CPU and",
        "the latencies and throughputs are pessimistic. Each benchmark starts once the machine",
        "has been quiet (under 25% CPU) for two seconds, or after 60 s (the notes say which).",
        "",
        "## Results",
        "",
        "| # | measurement | workbench | reference | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, _script, _limit in BENCHES:
        res = results.get(name)
        title = TITLES[name]
        num = title.split(".")[0]
        if res is None:
            why = runs.get(name, {}).get("why", "not run")
            lines.append(f"| {num} | {title[3:]}: **did not run** ({_one_line(why)}) | | | | | |")
            continue
        for r in res["rows"]:
            wb = f"{fmt(r['workbench'], r['unit'])} {r['unit']}" if r["workbench"] is not None \
                else (r.get("detail") or "n/a")
            ref = f"{fmt(r['reference'], r['unit'])} ({r['ref_name']})" if r["reference"] is not None else ""
            ratio = fmt(r["ratio"]) if r["ratio"] is not None else ""
            met = {True: "yes", False: "**no**", None: ""}[r["met"]]
            goal = r["goal"].replace("ratio", "").strip()  # written "<= 2 ratio" or "ratio <= 1.5"
            if goal and "ratio" in r["goal"]:
                goal = f"ratio {goal}"
            elif goal:
                goal = f"{goal} {r['unit']}"
            lines.append(f"| {num} | {r['metric']} | {wb} | {ref} | {ratio} | {goal} | {met} |")
    lines += ["", "## Notes from the run", ""]
    for name, _script, _limit in BENCHES:
        res = results.get(name)
        run = runs.get(name, {})
        head = (f"- **{TITLES[name]}** ({run.get('seconds', 0):.0f} s, load {run.get('load', '?')}; "
                f"{run.get('waited', 'no wait')})")
        notes = res["notes"] if res else [run.get("why", "not run")]
        lines.append(head + (": " + "; ".join(_one_line(n) for n in notes) if notes else ""))
    lines += ["", MARK, "", kept.strip(), ""]  # stripped: blank lines do not pile up run by run
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, few repeats")
    ap.add_argument("--only", default="", help="comma-separated benchmark names")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    args = ap.parse_args()
    only = {n for n in args.only.split(",") if n}
    OUT.mkdir(parents=True, exist_ok=True)
    # The sandbox's helpers start with -B (they may not write into the package): a source
    # edited since its bytecode was written would be compiled again on every helper start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "workbench")],
                   stdout=subprocess.DEVNULL, check=False)
    started = time.monotonic()
    machine = machine_info()
    runs_file = OUT / "runs.json"
    runs: dict[str, dict[str, Any]] = json.loads(runs_file.read_text()) if only and runs_file.exists() else {}
    for name, script, limit in BENCHES:
        if only and name not in only:
            continue
        runs[name] = run_one(name, script, limit, args.quick)
        runs_file.write_text(json.dumps(runs, indent=2))
    total = time.monotonic() - started
    results: dict[str, dict[str, Any]] = {}
    for name, _script, _limit in BENCHES:
        path = OUT / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    print(f"== all benchmarks: {total:.0f} s" + (" (over the 10-minute budget!)" if total > 600 else ""))
    if args.no_doc:
        return
    kept = ""
    if DOC.exists():
        text = DOC.read_text()
        if MARK in text:
            kept = text.split(MARK, 1)[1]
    if only:
        total = sum(r.get("seconds", 0) for r in runs.values())
    DOC.write_text(render(results, runs, machine, args.quick, total, kept))
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
