"""Compaction: replace a long conversation with a hand-off note the model writes itself.

The new conversation is: the system prompt, the original task verbatim, the latest user
messages (verbatim, newest kept first within a budget), and the summary. The task always
survives, however many times a session is compacted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.agent.conversation import (
    Item,
    Summary,
    SystemMessage,
    UserMessage,
    estimate_tokens,
)

# The latest user messages kept verbatim may use at most this share of the context window.
USER_MESSAGES_SHARE = 0.2
MAX_KEPT_USER_MESSAGES = 20


@dataclass
class CompactionResult:
    items: list[Item]
    before: int
    after: int


def should_compact(context_tokens: int, context_window: int, threshold: float) -> bool:
    return context_window > 0 and context_tokens >= threshold * context_window


def original_task(items: list[Item]) -> UserMessage | None:
    return next((it for it in items if isinstance(it, UserMessage)), None)


def latest_user_messages(items: list[Item], budget_tokens: int) -> list[UserMessage]:
    """User messages after the original task, newest first until the budget is spent, in
    their original order."""
    users = [it for it in items if isinstance(it, UserMessage)][1:]
    kept: list[UserMessage] = []
    used = 0
    for msg in reversed(users):
        cost = estimate_tokens([msg])
        if kept and (used + cost > budget_tokens or len(kept) >= MAX_KEPT_USER_MESSAGES):
            break
        kept.append(msg)
        used += cost
    kept.reverse()
    return kept


def compacted(
    items: list[Item],
    summary: str,
    system: Callable[[], str],
    context_window: int,
    before_tokens: int,
) -> CompactionResult:
    """The conversation that replaces `items`; `system` builds a fresh system prompt."""
    new: list[Item] = [SystemMessage(system())]
    task = original_task(items)
    if task is not None:
        new.append(UserMessage(task.text))
    budget = max(1000, int(context_window * USER_MESSAGES_SHARE))
    new.extend(UserMessage(m.text) for m in latest_user_messages(items, budget))
    new.append(Summary(summary.strip() or "(the model wrote an empty summary)"))
    return CompactionResult(new, before_tokens, estimate_tokens(new))
