"""What the demo model says: the scripted sessions for the fake OpenAI-compatible server,
and the demo's two attempts (the built-in agent and a scripted terminal CLI on one task).

Turns are paced (`delay_s` before a reply, `chunk_delay_s` between streamed pieces) so the
sessions visibly progress over a few seconds.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.agent.providers import ProviderConfig
from workbench.demo import terminal_agent

# The daemon reaches the scripted server through this module, never `workbench.fakes` itself.
from workbench.fakes.model_server import FakeOpenAI as FakeOpenAI
from workbench.fakes.model_server import Script, parse_scripts

DEMO_MODEL = "demo-model (scripted, offline)"
# -B: no __pycache__ in the worktrees (it would show in the review as new files)
TESTS = ["python3", "-B", "-m", "unittest", "-v"]


@dataclass(frozen=True)
class DemoSession:
    name: str
    role: str  # what it shows, for the CLI's summary
    approval: str
    prompt: str


FIX_PROMPT = "The test for mean() fails. Find the bug in calc.py, fix it, and run the tests."
MEDIAN_PROMPT = "Add a median() function to calc.py, with a test."
HINTS_PROMPT = "Add type hints to every function in calc.py."

DEMO_SESSIONS = (
    DemoSession("demo-fix-bug", "fixes the bug and runs the tests: review it hunk by hunk", "full-auto",
                FIX_PROMPT),
    DemoSession("demo-approval", "waits for your approval", "suggest", MEDIAN_PROMPT),
    DemoSession("demo-error", "fails and shows an error", "auto-edit", HINTS_PROMPT),
)

# Two attempts on one task: the built-in agent (a wrong fix: its check fails, send it back)
# and a terminal CLI (asks before it edits: attach and answer). Compare them with P.
ATTEMPTS_NAME = "demo-attempt"
ATTEMPT_PROMPT = terminal_agent.TASK
ATTEMPT_ROLES = (
    "attempt 1, built-in agent: a wrong fix, its check fails (send it back)",
    "attempt 2, a CLI in a terminal: asks before it edits (attach, answer y)",
)


def terminal_agent_command() -> str:
    """The scripted CLI's command line: the package directory is visible in every sandbox."""
    script = Path(terminal_agent.__file__).resolve()
    return f"python3 -I -S -B {shlex.quote(str(script))}"

FIX_PATCH = '''*** Begin Patch
*** Update File: calc.py
@@ def mean(values):
     """The arithmetic mean of a non-empty list of numbers."""
-    return sum(values) / (len(values) + 1)
+    return sum(values) / len(values)
*** End Patch
'''

MEDIAN_PATCH = '''*** Begin Patch
*** Update File: calc.py
@@ def clamp(x, lo, hi):
     """x limited to the range [lo, hi]."""
     return max(lo, min(x, hi))
+
+
+def median(values):
+    """The middle value of a non-empty list of numbers."""
+    ordered = sorted(values)
+    mid = len(ordered) // 2
+    if len(ordered) % 2:
+        return ordered[mid]
+    return (ordered[mid - 1] + ordered[mid]) / 2
*** End of File
*** Update File: test_calc.py
@@
-from calc import clamp, mean
+from calc import clamp, mean, median
@@ class CalcTest(unittest.TestCase):
     def test_clamp(self):
         self.assertEqual(clamp(5, 0, 3), 3)
+
+    def test_median(self):
+        self.assertEqual(median([3, 1, 2]), 2)
+        self.assertEqual(median([4, 1, 3, 2]), 2.5)
*** End Patch
'''

WRONG_PATCH = '''*** Begin Patch
*** Update File: calc.py
@@ def mean(values):
     """The arithmetic mean of a non-empty list of numbers."""
-    return sum(values) / (len(values) + 1)
+    return sum(values) / max(len(values) - 1, 1)
*** End Patch
'''

RIGHT_PATCH = '''*** Begin Patch
*** Update File: calc.py
@@ def mean(values):
     """The arithmetic mean of a non-empty list of numbers."""
-    return sum(values) / max(len(values) - 1, 1)
+    return sum(values) / len(values)
*** End Patch
'''

PACE = {"delay_s": 0.6, "chunk_delay_s": 0.04}


def _shell(argv: list[str]) -> dict[str, Any]:
    return {"name": "shell", "arguments": json.dumps({"command": argv})}


def _patch(text: str) -> dict[str, Any]:
    return {"name": "apply_patch", "arguments": json.dumps({"input": text}), "chunks": 6}


def _plan(*steps: tuple[str, str]) -> dict[str, Any]:
    plan = [{"step": s, "status": st} for s, st in steps]
    return {"name": "update_plan", "arguments": json.dumps({"plan": plan})}


SCRIPTS: list[dict[str, Any]] = [
    {
        "match": FIX_PROMPT,
        "turns": [
            {**PACE, "text": "I'll reproduce the failure first.", "tool_calls": [
                _plan(("Reproduce the failing test", "in_progress"), ("Find the bug", "pending"),
                      ("Fix it and re-run the tests", "pending")),
                _shell(TESTS),
            ]},
            {**PACE, "text": "test_mean fails: the mean of [2, 4, 6] comes out as 3.0. "
                             "Let me read calc.py.",
             "tool_calls": [_shell(["cat", "calc.py"])]},
            {**PACE, "text": "`mean()` divides by `len(values) + 1`; it should divide by "
                             "`len(values)`. Fixing that.",
             "tool_calls": [_patch(FIX_PATCH)]},
            {**PACE, "text": "Now the tests again.", "tool_calls": [_shell(TESTS)]},
            {**PACE, "tool_calls": [
                _plan(("Reproduce the failing test", "completed"), ("Find the bug", "completed"),
                      ("Fix it and re-run the tests", "completed")),
            ]},
            {**PACE, "text": "Fixed: `mean()` in calc.py divided by `len(values) + 1` instead of "
                             "`len(values)`. Both tests pass now (`python3 -m unittest -v`)."},
        ],
    },
    {
        "match": MEDIAN_PROMPT,
        "turns": [
            {**PACE, "text": "Let me look at calc.py first.",
             "tool_calls": [_shell(["cat", "calc.py"])]},
            {**PACE, "text": "I'll add `median()` after `clamp()`, and a test for odd and even "
                             "lengths.",
             "tool_calls": [_patch(MEDIAN_PATCH)]},
            {**PACE, "text": "Running the tests.", "tool_calls": [_shell(TESTS)]},
            {**PACE, "text": "Added `median()` to calc.py and `test_median` to test_calc.py; "
                             "test_median passes. test_mean still fails: that is the existing "
                             "bug in `mean()`, which the demo-fix-bug session fixes."},
        ],
    },
    {
        "match": HINTS_PROMPT,
        "turns": [
            {**PACE, "text": "I'll read calc.py before adding the hints.",
             "tool_calls": [_shell(["cat", "calc.py"])]},
            # The "provider" keeps failing: retries, then a visible error state.
            {"error": {"kind": "status", "status": 503, "times": 10, "retry_after_ms": 700}},
        ],
    },
    {
        "match": ATTEMPT_PROMPT,
        "turns": [
            {**PACE, "text": "Let me look at mean() first.", "tool_calls": [_shell(["cat", "calc.py"])]},
            {**PACE, "text": "`mean()` divides by `len(values) + 1`. It should be `n - 1`, like a "
                             "sample statistic.",
             "tool_calls": [_patch(WRONG_PATCH)]},
            {**PACE, "text": "Done: `mean()` now divides by `len(values) - 1`."},
            # After the failing check is sent back (E in the UI, or `workbench check ID --send`):
            {**PACE, "text": "The check says `mean([2, 4, 6])` is 6.0, not 4: a mean divides by n; "
                             "n - 1 is for the sample variance. Fixing that.",
             "tool_calls": [_patch(RIGHT_PATCH)]},
            {**PACE, "text": "Running the tests.", "tool_calls": [_shell(TESTS)]},
            {**PACE, "text": "Fixed: `mean()` divides by `len(values)`; both tests pass."},
        ],
    },
]


def demo_scripts() -> list[Script]:
    return parse_scripts(SCRIPTS, "demo script")


def demo_provider_config(base_url: str) -> ProviderConfig:
    return ProviderConfig(
        base_url=base_url,
        api_key=None,
        model=DEMO_MODEL,
        wire_api="chat",
        max_retries=2,
        retry_base_s=0.5,
        retry_max_s=2.0,
        timeout_s=30,
        context_window=32_000,
        api_key_env="WORKBENCH_DEMO_API_KEY",
    )
