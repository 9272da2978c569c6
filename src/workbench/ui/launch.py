"""Entry point for the full-screen UI."""

from __future__ import annotations

import click


def run_ui(session_id: str | None) -> None:
    try:
        from workbench.ui.app import WorkbenchApp
    except ImportError:
        click.echo("The full-screen UI is not built yet; use `workbench ls`, `new`, `screen`, `keys`.")
        return
    from workbench.ui.keymap import startup_keymap_errors

    errors = startup_keymap_errors()
    if errors:  # a binding that silently never fires is a trap: refuse to start instead
        more = f" (and {len(errors) - 1} more: see `workbench doctor`)" if len(errors) > 1 else ""
        click.echo(f"workbench: {errors[0]}{more}", err=True)
        raise SystemExit(2)
    WorkbenchApp(focus_session=session_id).run()
