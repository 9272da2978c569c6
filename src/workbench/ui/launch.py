"""Entry point for the full-screen UI."""

from __future__ import annotations

import sys

from workbench.errors import UsageError


def require_terminal() -> None:
    """The UI draws on a terminal and reads keys from one: without both it would write
    escape codes into a pipe and spin on a closed stdin."""
    missing = [name for name, f in (("stdin", sys.stdin), ("stdout", sys.stdout)) if f is None or not f.isatty()]
    if missing:
        raise UsageError(
            f"the full-screen UI needs a terminal, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not one",
            hint="run it in a terminal; scripts use `workbench ls`, `screen`, `keys`, `log`",
        )


def run_ui(session_id: str | None) -> None:
    from workbench.ui.keymap import startup_keymap_errors

    errors = startup_keymap_errors()
    if errors:  # a binding that silently never fires is a trap: refuse to start instead
        more = f" (and {len(errors) - 1} more: see `workbench doctor`)" if len(errors) > 1 else ""
        sys.stderr.write(f"workbench: {errors[0]}{more}\n")
        raise SystemExit(2)
    require_terminal()
    from workbench.ui.app import WorkbenchApp

    WorkbenchApp(focus_session=session_id).run()
