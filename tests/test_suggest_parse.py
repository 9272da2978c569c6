"""Suggestions from tool output: the parsers alone (no daemon, no processes)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_repo
from workbench.core import suggest_parse as sp

PYTEST = """\
..F.E                                                                    [100%]
=================================== FAILURES ===================================
___________________________________ test_add ___________________________________

    def test_add():
>       assert add(1, 2) == 3
E       assert -1 == 3

tests/test_math.py:6: AssertionError
=========================== short test summary info ============================
FAILED tests/test_math.py::test_add - assert -1 == 3
ERROR tests/test_db.py::test_conn - \x1b]0;pwned\x07OSError: no db
1 failed, 1 error, 3 passed in 0.05s
"""


def test_pytest_summary_gives_one_suggestion_per_failing_test_with_its_section() -> None:
    found = sp.check_failures(PYTEST, "pytest -q", 1)
    assert [f.key for f in found] == ["tests/test_math.py::test_add", "tests/test_db.py::test_conn"]
    add = found[0]
    assert add.title == "Failing test tests/test_math.py::test_add"
    assert "assert -1 == 3" in add.evidence and "tests/test_math.py:6: AssertionError" in add.evidence
    assert add.locations == ["tests/test_math.py:6"]
    assert add.evidence in add.prompt and "`pytest -q`" in add.prompt
    assert "\x1b" not in found[1].evidence and "\x07" not in found[1].evidence


def test_a_failing_check_without_pytest_summary_is_one_group_and_a_pass_is_none() -> None:
    found = sp.check_failures("make: *** [all] Error 2\n", "make", 2)
    assert len(found) == 1 and found[0].key == "command:make" and "exit code 2" in found[0].title
    assert sp.check_failures("all good\n", "make", 0) == []
    timed = sp.check_failures("", "make", None, "timed out after 5 s")
    assert "timed out" in timed[0].title


UNITTEST = """\
test_mean (test_calc.CalcTest.test_mean) ... FAIL
test_ok (test_calc.CalcTest.test_ok) ... ok

======================================================================
FAIL: test_mean (test_calc.CalcTest.test_mean)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/scratch/abc/test_calc.py", line 8, in test_mean
    self.assertEqual(mean([2, 4, 6]), 4)
AssertionError: 6.0 != 4

----------------------------------------------------------------------
Ran 2 tests in 0.003s

FAILED (failures=1)
"""


def test_unittest_failures_are_one_suggestion_each_not_the_summary_line() -> None:
    (found,) = sp.check_failures(UNITTEST, "python3 -m unittest", 1)
    assert found.title == "Failing test test_calc.CalcTest.test_mean"  # not "(failures=1)"
    assert "AssertionError: 6.0 != 4" in found.evidence and found.locations == ["test_calc.py:8"]
    assert "FAILED (failures=1)" not in found.evidence


def test_linters_group_by_file_most_problems_first() -> None:
    ruff = json.dumps([
        {"code": "F401", "message": "`os` imported but unused", "filename": "/s/a.py", "location": {"row": 1}},
        {"code": "E711", "message": "comparison to None", "filename": "/s/b.py", "location": {"row": 4}},
        {"code": "F841", "message": "unused x", "filename": "/s/b.py", "location": {"row": 2}},
    ])
    found = sp.ruff(ruff, "/s")
    assert [f.key for f in found] == ["ruff:b.py", "ruff:a.py"]
    assert found[0].evidence.splitlines() == ["b.py:2: F841 unused x", "b.py:4: E711 comparison to None"]
    assert found[0].title == "ruff: 2 problems in b.py (E711, F841)"
    mypy = ("src/m.py:3: error: Incompatible types  [assignment]\nsrc/m.py:9:5: error: Bad  [misc]\n"
            "src/m.py:1: note: x\n")
    (m,) = sp.mypy(mypy, "/s")
    assert m.locations == ["src/m.py:3", "src/m.py:9"] and "(assignment, misc)" in m.title


def test_todos_rank_the_newest_file_first_and_cap_the_groups() -> None:
    hits, total = sp.parse_grep(b"old.py\x001\x00# TODO old\nnew.py\x007\x00# FIXME new\nnew.py\x009\x00x\n", 10)
    assert total == 3 and [(h.path, h.line) for h in hits] == [("old.py", 1), ("new.py", 7), ("new.py", 9)]
    hits[0].time, hits[1].time = 100.0, 200.0
    found = sp.todos(hits, total, 10)
    assert [f.key for f in found] == ["todo:new.py", "todo:old.py"]
    assert found[0].evidence.startswith("new.py:7: # FIXME new")
    assert len(sp.todos(hits, total, 1)) == 1


def test_blame_porcelain_dates_each_line() -> None:
    a, b = "a" * 40, "b" * 40
    porcelain = (f"{a} 3 3 1\nauthor x\nauthor-time 100\n\tline\n{b} 5 5 1\nauthor-time 200\n\tl\n"
                 f"{a} 3 8 1\n\tagain\n").encode()
    assert sp.blame_times(porcelain) == {3: 100.0, 5: 200.0, 8: 100.0}


def test_logs_group_tracebacks_and_error_lines_ignoring_numbers() -> None:
    log = ("INFO start\nERROR db timeout after 30s\nTraceback (most recent call last):\n"
           '  File "app.py", line 4, in main\n    run()\nValueError: bad 42\nERROR db timeout after 31s\n')
    found = sp.log_problems(log, "app.log")
    titles = [f.title for f in found]
    assert titles == ["Error in app.log: ERROR db timeout after 30s", "Traceback in app.log: ValueError: bad 42"]
    assert "seen 2 times" in found[0].evidence and 'File "app.py", line 4' in found[1].evidence


def test_ids_are_stable_and_differ_by_repo_source_and_key() -> None:
    one = sp.suggestion_id("/r", "todo", "todo:a.py")
    assert one == sp.suggestion_id("/r", "todo", "todo:a.py") and len(one) == 10
    assert len({one, sp.suggestion_id("/r2", "todo", "todo:a.py"), sp.suggestion_id("/r", "lint", "todo:a.py")}) == 3


def test_a_repo_file_turns_sources_off_never_on(isolated_env: Path) -> None:
    from workbench.core import trust
    from workbench.daemon.suggest_service import load_settings

    user = isolated_env / "config" / "workbench" / "config.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("[suggest]\ngh = false\ninterval_s = 600\n")
    repo = make_repo(isolated_env / "repo")
    (repo / ".workbench.toml").write_text("[suggest]\ngh = true\ntodo = false\ninterval_s = 60\n")
    sg = load_settings(repo).suggest
    assert (sg.gh, sg.todo, sg.lint, sg.interval_s) == (False, False, True, 600)
    (repo / ".workbench.toml").write_text("[suggest]\ninterval_s = 0\n")
    assert load_settings(repo).suggest.interval_s == 0
    # a source's setting is free in a repo file: nothing to trust
    assert trust.load_records() == {}
