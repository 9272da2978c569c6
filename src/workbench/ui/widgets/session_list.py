"""The session list: grouped by repo, one two-line entry per session."""

from __future__ import annotations

import time

from textual.binding import Binding
from textual.content import Content
from textual.geometry import Region
from textual.timer import Timer
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from workbench.ui import model
from workbench.ui.model import Session
from workbench.ui.widgets.direct_paint import paint_now
from workbench.ui.widgets.same_content import looks_the_same

REPO_PREFIX = "repo:"
# Between two entries' repaints when several changed at once (see `_repaint_due`).
ENTRY_GAP = 0.02


def entry(s: Session, now: float, diff_cache: dict[str, tuple[int, int]], width: int) -> Content:
    state = model.state_of(s)
    mark = ("⚑ ", "bold $wb-attention") if model.needs_you(s) else ("  ", "")
    name = model.name_of(s)
    name_style = "bold $error" if model.unsandboxed(s) else "bold"
    age = model.session_elapsed(s, now)
    pad = max(1, width - 4 - len(name) - len(age))
    line1 = Content.assemble(mark, (model.STATE_ICONS[state], f"$wb-{state}"), " ",
                             (name, name_style), " " * pad, (age, "dim"))
    parts: list[tuple[str, str] | str] = ["    ", (model.agent_of(s), "$text-muted")]
    host = s.get("host")
    if isinstance(host, str) and host:  # a remote host's session (docs/remote.md)
        parts += [" ", (f"@{host}", "$accent")]
    counts = model.diff_counts(s, diff_cache)
    if counts is not None:
        parts += [" ", (f"+{counts[0]}", "$wb-diff-added"), " ", (f"-{counts[1]}", "$wb-diff-removed")]
    check = model.check_label(s)
    if check is not None:
        parts += [" ", check]
    pending = s.get("review_pending")
    if isinstance(pending, int) and pending:
        parts += [" ", (f"✎{pending}", "$warning")]
    if model.unsandboxed(s):
        parts += [" ", ("no sandbox", "bold $error")]
    usage = model.usage_label(s)
    if usage:
        parts += [" ", (usage, "dim")]
    if s.get("approval_pending"):
        parts += [" ", ("approval", "bold $wb-waiting")]
    # Truncate rather than wrap, so each session stays two lines at any width.
    return Content.assemble(line1.truncate(width, ellipsis=True), "\n",
                            Content.assemble(*parts).truncate(width, ellipsis=True))


class SessionList(OptionList):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
    ]

    DEFAULT_CSS = """
    SessionList, SessionList:focus { width: 30%; min-width: 24; max-width: 40; height: 1fr;
                                     border: none; padding: 0; background: $surface; }
    SessionList:focus { background-tint: $foreground 4%; }
    SessionList > .option-list--option-disabled { color: $text-muted; text-style: bold; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[str] = []
        self._last: tuple[list[Session], dict[str, tuple[int, int]]] | None = None
        self._width = 0
        self._due: dict[str, Content] = {}  # entries changed and not yet repainted
        self._due_timer: Timer | None = None

    def on_resize(self) -> None:
        if self._last is not None and self.size.width != self._width:
            self._width = self.size.width
            self.show(*self._last)

    @property
    def highlighted_session(self) -> str | None:
        if self.highlighted is None:
            return None
        opt = self.get_option_at_index(self.highlighted)
        oid = opt.id or ""
        return None if oid.startswith(REPO_PREFIX) else oid

    def show(self, sessions: list[Session], diff_cache: dict[str, tuple[int, int]],
             focus: str | None = None) -> None:
        self._last = (sessions, diff_cache)
        now = time.time()
        width = max(20, (self.size.width or 36) - 3)
        options: list[Option] = []
        entries: dict[str, Content] = {}
        for repo, items in model.group_by_repo(sessions):
            options.append(Option(Content.assemble((model.repo_label(repo), "bold")),
                                  id=REPO_PREFIX + repo, disabled=True))
            for s in items:
                entries[s["id"]] = entry(s, now, diff_cache, width)
                options.append(Option(entries[s["id"]], id=s["id"]))
        keys = [o.id or "" for o in options]
        want = focus or self.highlighted_session
        if keys == self._keys:
            for sid, content in entries.items():
                if looks_the_same(self.get_option(sid).prompt, content):
                    self._due.pop(sid, None)
                else:
                    self._due[sid] = content
            if self._due_timer is None:
                self._repaint_due()
        else:
            self._due.clear()
            if self._due_timer is not None:
                self._due_timer.stop()
                self._due_timer = None
            self._keys = keys
            self.clear_options()
            self.add_options(options)
        if want and want in keys:
            index = keys.index(want)
            if self.highlighted != index:
                self.highlighted = index
        elif self.highlighted is None or self.highlighted_session is None:
            for i, k in enumerate(keys):
                if not k.startswith(REPO_PREFIX):
                    self.highlighted = i
                    break

    def _repaint_due(self) -> None:
        """Repaint one changed entry now and the next after `ENTRY_GAP`: every entry's age
        changes at once each second, and one compositor pass over all of them (4-14 ms with
        nine sessions) was a keystroke's echo delayed by as much in the session typed into."""
        self._due_timer = None
        if not self._due:
            return
        sid = next(iter(self._due))
        self._replace_entry(sid, self._due.pop(sid))
        if self._due:
            self._due_timer = self.set_timer(ENTRY_GAP, self._repaint_due)

    def _replace_entry(self, option_id: str, prompt: Content) -> None:
        """Repaint one entry's two lines. OptionList's own `replace_option_prompt` drops
        every cached render and repaints the whole list (5-7 ms of CPU for ten sessions,
        taken from whoever is typing); an entry keeps its height, so only its lines need it."""
        try:
            index = self.get_option_index(option_id)
            option = self.get_option_at_index(index)
            line, height = self._index_to_line[index], self._heights[index]
            if height != len(prompt.plain.split("\n")):
                raise LookupError("the entry's height changed")
            option._set_prompt(prompt)
            cache = self._option_render_cache
            for key in [k for k in list(cache.keys()) if k[0] is option]:
                cache.discard(key)
        except (AttributeError, LookupError):  # another Textual, or a new height: the slow way
            self.replace_option_prompt(option_id, prompt)
            return
        top = line - self.scroll_offset.y
        if not paint_now(self, list(range(top, top + height))):
            self.refresh(Region(0, top, self.size.width, height))

    def select_session(self, session_id: str) -> None:
        if session_id in self._keys:
            self.highlighted = self._keys.index(session_id)
