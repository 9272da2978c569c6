"""The agent's tools (`shell`, `apply_patch`, `update_plan`): specs, validation, execution.

Independent of the provider wire format: providers turn `TOOL_SPECS` into their JSON shape
and hand back `ToolCall`s; the loop asks for approval using `ParsedCall.describe()` and then
calls `execute`. Nothing here raises for a model's mistake: it becomes an error outcome the
model can read and correct.

The entry callers import; the work is in `tool_specs.py` (what the model is told),
`tool_calls.py` (checking a call), `command_read_only.py` (commands needing no approval)
and `tool_exec.py` (running a call; one command is `command_run.py`).
"""

from __future__ import annotations

from workbench.agent.command_read_only import is_known_read_only
from workbench.agent.tool_calls import (
    MAX_TIMEOUT_MS,
    PLAN_STATUSES,
    Kind,
    ParsedCall,
    ToolCall,
    parse_call,
)
from workbench.agent.tool_exec import (
    CommandRunner,
    PatchRunner,
    PatchUnavailable,
    ToolOutcome,
    execute,
)
from workbench.agent.tool_specs import (
    TOOL_SPECS,
    ToolSpec,
    chat_tool_schemas,
    responses_tool_schemas,
)

__all__ = [
    "MAX_TIMEOUT_MS",
    "PLAN_STATUSES",
    "TOOL_SPECS",
    "CommandRunner",
    "Kind",
    "ParsedCall",
    "PatchRunner",
    "PatchUnavailable",
    "ToolCall",
    "ToolOutcome",
    "ToolSpec",
    "chat_tool_schemas",
    "execute",
    "is_known_read_only",
    "parse_call",
    "responses_tool_schemas",
]
