"""What the model is told about the agent's tools: their specs and the two wire shapes.

Kept apart from checking and running calls so the text a model sees (descriptions, JSON
Schemas) is read and changed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    """One tool as providers describe it to the model: name, prose, JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


_SHELL_DESCRIPTION = """Run a command and return its exit code and output (stdout and stderr \
merged). `command` is an argv array, e.g. ["rg", "-n", "TODO", "src"]; for pipes, redirection \
or `&&` use ["bash", "-lc", "..."]. Runs in the workspace (or `workdir`, relative to it) with \
no stdin. Long output is shortened in the middle. Do not use it to edit files: use apply_patch."""

_PATCH_DESCRIPTION = """Edit files with a patch. Paths are relative to the workspace root. \
Format:
*** Begin Patch
*** Add File: path/new.py
+every line of the new file, each prefixed with +
*** Update File: path/old.py
*** Move to: path/renamed.py   (optional)
@@ class or def line the hunk is in (optional)
 context line (prefixed with a space; about 3 before and after each change)
-removed line
+added line
*** Delete File: path/gone.py
*** End Patch
Context and removed lines must match the file. Use several @@ hunks for several places in \
one file, in file order. Add `*** End of File` after a hunk that ends at the end of a file."""

_PLAN_DESCRIPTION = """Record the plan for the task as a short list of steps with statuses, \
and update it as work progresses. At most one step should be in_progress."""


def _closed_object(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """A JSON Schema object with exactly these properties: models get no room to invent keys."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


TOOL_SPECS: list[ToolSpec] = [
    ToolSpec(
        name="shell",
        description=_SHELL_DESCRIPTION,
        parameters=_closed_object(
            {
                "command": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The command and its arguments.",
                },
                "workdir": {
                    "type": "string",
                    "description": "Directory to run in, relative to the workspace root.",
                },
                "timeout_ms": {
                    "type": "integer",
                    "description": "Kill the command after this many milliseconds.",
                },
            },
            "command",
        ),
    ),
    ToolSpec(
        name="apply_patch",
        description=_PATCH_DESCRIPTION,
        parameters=_closed_object(
            {
                "input": {
                    "type": "string",
                    "description": "The whole patch, from *** Begin Patch to *** End Patch.",
                }
            },
            "input",
        ),
    ),
    ToolSpec(
        name="update_plan",
        description=_PLAN_DESCRIPTION,
        parameters=_closed_object(
            {
                "explanation": {"type": "string"},
                "plan": {
                    "type": "array",
                    "items": _closed_object(
                        {
                            "step": {"type": "string"},
                            "status": {
                                "type": "string",
                                "enum": ["pending", "in_progress", "completed"],
                            },
                        },
                        "step",
                        "status",
                    ),
                },
            },
            "plan",
        ),
    ),
]


def chat_tool_schemas() -> list[dict[str, Any]]:
    """`tools=` for Chat Completions."""
    return [
        {
            "type": "function",
            "function": {
                "name": s.name,
                "description": s.description,
                "parameters": s.parameters,
            },
        }
        for s in TOOL_SPECS
    ]


def responses_tool_schemas() -> list[dict[str, Any]]:
    """`tools=` for the Responses API (function tools)."""
    return [
        {
            "type": "function",
            "name": s.name,
            "description": s.description,
            "parameters": s.parameters,
            "strict": False,
        }
        for s in TOOL_SPECS
    ]
