"""The base of the main screen's parts: `MainScreen` (screens/main.py) is built from the
`MainScreenPart` subclasses in the `main_*.py` modules, one concern each.

A part is a `Screen` subclass rather than a plain mixin because Textual registers `@on`
handlers only on classes its message-pump metaclass builds; the parts define no `__init__`
and no CSS. Their state that belongs to one part is a class attribute there (an immutable
default the instance overrides)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from textual.containers import Container

    from workbench.ui import model
    from workbench.ui.host import ScreenHost
    from workbench.ui.widgets.session_list import SessionList
    from workbench.ui.widgets.session_pane import SessionPane


class MainScreenPart(Screen[None]):
    """What the parts use of one another and of `MainScreen`, which defines these."""

    if TYPE_CHECKING:
        session_list: SessionList
        right: Container
        panes: dict[str, SessionPane]

        @property
        def wb(self) -> ScreenHost: ...
        def current(self) -> model.Session | None: ...
        def show_session(self, sid: str) -> None: ...
        def send_to_terminal(self, sid: str, data: bytes) -> None: ...
        def jump_keys(self) -> list[str]: ...
