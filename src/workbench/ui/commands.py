"""Command palette (ctrl+p): every action, every session by name, every theme."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from workbench.ui import model
from workbench.ui.keymap import DESCRIPTIONS

if TYPE_CHECKING:
    from workbench.ui.host import ScreenHost


class WorkbenchCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("ScreenHost", self.app)
        out: list[tuple[str, Callable[[], object], str]] = []
        for scope, bindings in (("app", type(app).BINDINGS), ("main", type(app.main).BINDINGS)):
            for b in bindings:
                if isinstance(b, Binding) and b.id and b.id != "app.palette":
                    label = DESCRIPTIONS.get(b.id, b.description)
                    out.append((label, partial(app.run_palette_action, scope, b.action),
                                f"{b.id} · {app.key_for(b.id, b.key)}"))
        for s in model.ordered(list(app.sessions.values())):
            out.append((f"Session: {model.name_of(s)}", partial(app.goto_session, s["id"]),
                        f"{model.state_of(s)} · {model.repo_label(str(s.get('repo', '')))}"))
        for name in app.wb_themes:
            out.append((f"Theme: {name}", partial(app.switch_theme, name), "switch the theme"))
        return out

    async def discover(self) -> Hits:
        for label, callback, help_text in self._commands():
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, callback, help_text in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)
