"""Shell completion of session ids for the click CLI (`workbench completion bash|zsh|fish`).

Completion runs on every tab press, so it asks a running daemon only (never starts one)
and gives up quietly: a completion must not print errors into the person's prompt.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem


class SessionArg(click.ParamType):
    """A session id or name; completes the ids of the daemon's sessions, with their names."""

    name = "session"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from workbench.daemon.client import Client
        from workbench.protocol import session as ps

        try:
            with Client("complete", autostart=False, timeout=2) as c:
                sessions: list[Any] = c.request(ps.LS, ps.NoParams())
        except Exception:  # no daemon, a slow one: no suggestions rather than noise
            return []
        return [
            CompletionItem(s["id"], help=f"{s['name']} ({s['state']})")
            for s in sessions
            if s["id"].startswith(incomplete) or s["name"].startswith(incomplete)
        ]


SESSION = SessionArg()
