"""What the demo model says: three scripted sessions for the fake OpenAI-compatible server.

Turns are paced (`delay_s` before a reply, `chunk_delay_s` between streamed pieces) so the
sessions visibly progress over a few seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workbench.agent.providers import ProviderConfig

# The daemon reaches the scripted server through this module, never `workbench.fakes` itself.
from workbench.fakes.model_server import FakeOpenAI as FakeOpenAI
from workbench.fakes.model_server import Script, parse_scripts

DEMO_MODEL = "demo-model (scripted, offline)"
TESTS = ["python3", "-m", "unittest", "-v"]


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
    DemoSession("demo-fix-bug", "fixes the bug and runs the tests", "full-auto", FIX_PROMPT),
    DemoSession("demo-approval", "waits for your approval", "suggest", MEDIAN_PROMPT),
    DemoSession("demo-error", "fails and shows an error", "auto-edit", HINTS_PROMPT),
)

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
