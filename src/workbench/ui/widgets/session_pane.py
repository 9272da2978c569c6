"""One session: header, approval card, and terminal / transcript / diff (alone or side by side)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from textual import work
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from workbench.core.escapes import one_line
from workbench.errors import WorkbenchError
from workbench.protocol.method import Method
from workbench.protocol.review import DiffReply
from workbench.protocol.session import LogEntry
from workbench.protocol.terminal import ScrollbackResult
from workbench.ui import model
from workbench.ui.model import Session
from workbench.ui.term_model import TermState
from workbench.ui.widgets.approval_card import ApprovalCard
from workbench.ui.widgets.diff_panel import DiffPanel
from workbench.ui.widgets.terminal import TerminalView
from workbench.ui.widgets.transcript import Transcript

P = TypeVar("P")
R = TypeVar("R")


class PaneHost(Protocol):
    """What a pane needs from the app (a fake in tests)."""

    detach_key: str
    approval_arm_ms: int

    def term_state(self, session_id: str) -> TermState: ...
    async def fetch_log(self, session_id: str, after: int) -> list[LogEntry]: ...
    async def fetch_diff(self, session: Session, *, paths: list[str] | None = None,
                         max_bytes: int | None = None, offset: int | None = None) -> DiffReply: ...
    async def fetch_scrollback(self, session_id: str, start: int, count: int) -> ScrollbackResult: ...
    async def request(self, spec: Method[P, R], params: P) -> R: ...
    def report_error(self, e: BaseException) -> None: ...


def header_content(s: Session, title: str = "") -> Content:
    state = model.state_of(s)
    unsandboxed = model.unsandboxed(s)
    parts: list[tuple[str, str] | str] = [
        (f" {model.STATE_ICONS[state]} ", f"$wb-{state}"),
        (model.name_of(s), "bold $error" if unsandboxed else "bold"), " ", (state, f"$wb-{state}"),
    ]
    if unsandboxed:
        parts += [("  ⚠ sandbox off", "bold $error")]
    reason = one_line(str(s.get("reason") or ""), 80)
    if reason:
        parts += [("  " + reason, "$text-muted")]
    if title:
        parts += [("  " + one_line(title, 60), "italic $text-muted")]
    return Content.assemble(*parts)


def placeholder_for(s: Session) -> str:
    state = model.state_of(s)
    if model.is_builtin(s):
        return "the built-in agent has no terminal: 2 shows its transcript"
    if state == "stopped":
        return "session stopped — r restarts it"
    if state == "error":
        return f"error: {one_line(str(s.get('reason') or ''), 60)}"
    if state == "starting":
        return "starting…"
    return "waiting for the screen…"


class SessionPane(Vertical):
    DEFAULT_CSS = """
    SessionPane { border: round $panel-lighten-2; height: 1fr; width: 1fr; }
    SessionPane.-attention { border: round $wb-attention; }
    SessionPane.-current { border: round $primary; }
    SessionPane:focus-within { border: heavy $primary; }
    SessionPane > .pane-header { height: 1; background: $panel; }
    SessionPane > .pane-notice { height: auto; background: $warning 25%; color: $foreground; padding: 0 1;
                                 display: none; }
    SessionPane.-notice > .pane-notice { display: block; }
    SessionPane #body { height: 1fr; }
    SessionPane #side { width: 1fr; }
    SessionPane.-view-terminal #side { display: none; }
    SessionPane.-view-transcript TerminalView, SessionPane.-view-diff TerminalView { display: none; }
    SessionPane.-view-transcript DiffPanel { display: none; }
    SessionPane.-view-diff Transcript { display: none; }
    SessionPane.-view-split TerminalView { width: 3fr; }
    SessionPane.-view-split #side { width: 2fr; border-left: vkey $panel-lighten-2; }
    """

    view: reactive[str] = reactive("terminal")

    def __init__(self, session: Session, host: PaneHost, view: str = "terminal") -> None:
        super().__init__(classes="session-pane")
        self.session = session
        self.session_id = str(session["id"])
        self.host = host
        state = host.term_state(self.session_id)
        self.header = Static(header_content(session, state.title), classes="pane-header")
        self.card = ApprovalCard(self.session_id, host.approval_arm_ms)
        self.terminal = TerminalView(state, detach_key=host.detach_key,
                                     fetch_scrollback=host.fetch_scrollback,
                                     placeholder=placeholder_for(session))
        self.transcript = Transcript()
        self.notice = Static("", classes="pane-notice")
        self.diff = DiffPanel(session, host)
        self.set_reactive(SessionPane.view, view)
        self.add_class(f"-view-{view}")
        self._log_loaded = False
        self._early: list[dict[str, Any]] = []

    def compose(self) -> Any:
        yield self.header
        yield self.notice
        yield self.card
        with Horizontal(id="body"):
            yield self.terminal
            with Vertical(id="side"):
                yield self.transcript
                yield self.diff

    def on_mount(self) -> None:
        self.update_session(self.session)
        self.load_log()
        if self.view in ("diff", "split"):
            self.load_diff()

    def watch_view(self, old: str, new: str) -> None:
        self.remove_class(f"-view-{old}")
        self.add_class(f"-view-{new}")
        if new in ("diff", "split"):
            self.load_diff()

    def update_session(self, s: Session) -> None:
        self.session = s
        self.header.update(header_content(s, self.host.term_state(self.session_id).title))
        self.terminal.placeholder = placeholder_for(s)
        self.card.show_pending(s.get("approval_pending") if isinstance(s.get("approval_pending"), dict) else None)
        self.diff.update_session(s)
        if self.has_class("-notice") and model.accepts_keys(s):
            self.show_notice("")
        self.set_class(model.needs_you(s), "-attention")
        if not self.host.term_state(self.session_id).received:
            self.terminal.refresh()

    def frame_applied(self, changed: set[int] | None) -> None:
        self.terminal.refresh_rows(changed)
        st = self.host.term_state(self.session_id)
        if changed is None or st.title:
            self.header.update(header_content(self.session, st.title))

    @work(exclusive=True, group="log", exit_on_error=False)
    async def load_log(self) -> None:
        entries: list[LogEntry] = []
        try:
            entries = await self.host.fetch_log(self.session_id, self.transcript.last_seq)
        except WorkbenchError as err:
            self.transcript.show_message(f"transcript unavailable: {err}")
        finally:
            self._log_loaded = True
        # Entries pushed while loading come after the loaded ones (seq order).
        for entry in sorted([*entries, *self._early], key=lambda x: int(x.get("seq") or 0)):
            self.transcript.add_entry(entry)
        self._early.clear()
        if not self.transcript.entries:
            self.transcript.show_message("nothing in the transcript yet")

    def add_log(self, entry: dict[str, Any]) -> None:
        if self._log_loaded:
            self.transcript.add_entry(entry)
        else:
            self._early.append(entry)

    def load_diff(self) -> None:
        self.diff.load()

    def show_notice(self, text: str) -> None:
        """One line inside the pane (e.g. why keys are not sent), instead of a toast per key."""
        self.notice.update(Content.assemble((one_line(text, 200), "bold")))
        self.set_class(bool(text), "-notice")

    def focus_default(self) -> None:
        """Focus what the pane is about: the card if one waits, else the visible view."""
        if self.card.pending is not None:
            self.card.focus()
        elif self.view == "transcript" or (self.view == "split" and model.is_builtin(self.session)):
            self.transcript.focus()  # a built-in session's terminal takes no keys: never focus it
        elif self.view == "diff":
            self.diff.view.focus()
        else:
            self.terminal.focus()
