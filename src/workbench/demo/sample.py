"""The demo's sample repository: a tiny library with a bug and a test that catches it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from workbench.errors import WorkbenchError

FILES: dict[str, str] = {
    "README.md": """\
# demo-calc

A tiny statistics library, made by `workbench demo`. `mean()` has a bug and
`test_calc.py` catches it: `python3 -m unittest -v`.
""",
    "AGENTS.md": """\
# Notes for agents

- Run the tests with `python3 -B -m unittest -v` from the repository root.
- Keep every function small, with a one-line docstring.
""",
    # The check workbench runs after each turn (in the session's sandbox); -B: no __pycache__.
    ".workbench.toml": """\
[check]
command = ["python3", "-B", "-m", "unittest"]
# The demo shows a failing check that you send back (E); automatic fix rounds would send it
# before you see it.
fix_rounds = 0
""",
    "calc.py": '''\
"""Small statistics helpers."""


def mean(values):
    """The arithmetic mean of a non-empty list of numbers."""
    return sum(values) / (len(values) + 1)


def clamp(x, lo, hi):
    """x limited to the range [lo, hi]."""
    return max(lo, min(x, hi))
''',
    "test_calc.py": '''\
import unittest

from calc import clamp, mean


class CalcTest(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([2, 4, 6]), 4)

    def test_clamp(self):
        self.assertEqual(clamp(5, 0, 3), 3)


if __name__ == "__main__":
    unittest.main()
''',
}


def _git(path: Path, *args: str) -> None:
    # A fixed identity: the user's machine may have none configured.
    cmd = ["git", "-c", "user.name=workbench demo", "-c", "user.email=demo@workbench.invalid",
           "-c", "commit.gpgsign=false", *args]
    res = subprocess.run(cmd, cwd=path, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise WorkbenchError(f"git {' '.join(args)} failed in {path}: {res.stderr.strip()}")


def create_repo(path: Path) -> Path:
    """Write the sample files into `path` (created) and commit them on branch main."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    for rel, text in FILES.items():
        (path / rel).write_text(text, encoding="utf-8")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "demo-calc: mean, clamp and their tests")
    return path
