"""Entry point for the full-screen UI."""

from __future__ import annotations

import click


def run_ui(session_id: str | None) -> None:
    try:
        from workbench.ui.app import WorkbenchApp
    except ImportError:
        click.echo("The full-screen UI is not built yet; use `workbench ls`, `new`, `screen`, `keys`.")
        return
    WorkbenchApp(focus_session=session_id).run()
