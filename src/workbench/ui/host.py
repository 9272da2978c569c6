"""What the screens and the command palette need from the app.

The app (`workbench.ui.app`) is the top of the UI: it builds the screens and imports them.
Screens never import the app; they reach it through this protocol (`cast(ScreenHost, self.app)`),
which the app satisfies structurally. Tests may pass a fake. The other way, the app never calls a
screen: it posts it `workbench.ui.messages` messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from workbench.ui import model
from workbench.ui.widgets.session_pane import PaneHost

if TYPE_CHECKING:
    from textual.binding import BindingType
    from textual.screen import Screen

    from workbench.protocol.hosts import HostLink
    from workbench.ui.daemon_link import DaemonLink
    from workbench.ui.layout_state import LayoutState


class ScreenHost(PaneHost, Protocol):
    """The app as its screens see it: the daemon link, the session table, the layout."""

    BINDINGS: ClassVar[list[BindingType]]
    layout: LayoutState
    sessions: dict[str, model.Session]
    diff_cache: dict[str, tuple[int, int]]
    link: DaemonLink
    daemon_label: str
    host_links: dict[str, HostLink]  # remote hosts' links by name (docs/remote.md)
    model_name: str
    wb_themes: list[str]

    @property
    def main(self) -> Screen[Any]: ...

    def key_for(self, binding_id: str, default: str) -> str: ...
    def save_layout(self) -> None: ...
    def watch_frames(self, ids: set[str]) -> Any: ...
    def resize_session(self, sid: str, cols: int, rows: int) -> Any: ...
    def action_attention(self) -> None: ...
    def goto_session(self, sid: str) -> None: ...
    def run_palette_action(self, scope: str, action: str) -> None: ...
    def switch_theme(self, name: str) -> None: ...
