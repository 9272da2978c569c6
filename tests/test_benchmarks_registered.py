"""Every benchmark that saves a result (benchlib's `Result("name", ...)`) runs in
`benchmarks/run_all.py` under that name, with a title in docs/performance.md's table."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_each_result_saving_benchmark_is_in_run_all() -> None:
    spec = importlib.util.spec_from_file_location("run_all_under_test", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    registered = {script: name for name, script, _limit in run_all.BENCHES}
    saving = {}
    for path in sorted(BENCH.glob("*.py")):
        m = re.search(r'\bResult\(\s*"(\w+)"', path.read_text(encoding="utf-8"))
        if m and path.name != "run_all.py":
            saving[path.name] = m.group(1)
    assert "suggest_scan.py" in saving
    assert {s: registered.get(s) for s in saving} == saving
    assert set(run_all.TITLES) == {name for name, _s, _l in run_all.BENCHES}
