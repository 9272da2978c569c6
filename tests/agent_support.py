"""Support for the built-in agent tests (no tests here): an in-memory host, script builders."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.agent.conversation import Item
from workbench.agent.loop import Status
from workbench.fakes.model_server import FakeOpenAI, ScriptedToolCall, Turn

Factory = Callable[..., FakeOpenAI]


CALC = '''def mean(values):
    return sum(values) / (len(values) + 1)
'''
TEST_CALC = '''import unittest
from calc import mean


class T(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([2, 4, 6]), 4)
'''
FIX = '''*** Begin Patch
*** Update File: calc.py
@@ def mean(values):
-    return sum(values) / (len(values) + 1)
+    return sum(values) / len(values)
*** End Patch
'''
TESTS = ["python3", "-m", "unittest", "-q"]


def shell(argv: list[str], **extra: Any) -> ScriptedToolCall:
    return ScriptedToolCall("shell", json.dumps({"command": argv, **extra}))


def patch(text: str) -> ScriptedToolCall:
    return ScriptedToolCall("apply_patch", json.dumps({"input": text}))


def calls(*c: ScriptedToolCall, text: str = "", **kw: Any) -> Turn:
    return Turn(text=text, tool_calls=list(c), **kw)


class MemoryHost:
    """An AgentHost that keeps everything in lists, like the daemon keeps it in the store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.deltas: list[str] = []
        self.statuses: list[tuple[str, str]] = [("running", "")]
        self.generations: dict[int, list[dict[str, Any]]] = {}
        self.approval: dict[str, Any] | None = None
        self.usage = [0, 0, 0.0]
        self.meta: dict[str, Any] = {}

    @property
    def status(self) -> str:
        return self.statuses[-1][0]

    def kinds(self) -> list[str]:
        return [k for k, _ in self.entries]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.entries if k == kind]

    def record(self, kind: str, data: dict[str, Any]) -> None:
        json.dumps(data)  # must be storable
        self.entries.append((kind, data))

    def delta(self, text: str) -> None:
        self.deltas.append(text)

    def set_status(self, status: Status, reason: str = "") -> None:
        if self.statuses[-1] != (status, reason):
            self.statuses.append((status, reason))

    def append_items(self, items: list[Item], generation: int) -> None:
        self.generations.setdefault(generation, []).extend(i.to_dict() for i in items)

    def replace_items(self, items: list[Item], generation: int) -> None:
        self.generations[generation] = [i.to_dict() for i in items]

    def set_approval(self, data: dict[str, Any] | None) -> None:
        self.approval = data

    def add_usage(self, tokens_in: int, tokens_out: int, cost: float) -> None:
        self.usage[0] += tokens_in
        self.usage[1] += tokens_out
        self.usage[2] += cost

    def save_meta(self, key: str, value: Any) -> None:
        self.meta[key] = value

    async def worktree_changed(self) -> bool:
        out = subprocess.run(["git", "status", "--porcelain"], cwd=self.root, capture_output=True, text=True)
        return bool(out.stdout.strip())

    def stored(self) -> tuple[int, list[dict[str, Any]]]:
        gen = max(self.generations) if self.generations else 0
        return gen, list(self.generations.get(gen, []))


async def until(pred: Any, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)
