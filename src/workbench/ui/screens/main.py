"""The main screen: the session list on the left, the focused session (or a grid) on the right.

Every key of the main view lands here and the app's messages are handled here. What the keys
do is split by concern into the screen's parts (`main_part.MainScreenPart` subclasses): the
panes' layout (`main_layout`), the attention key while attached (`main_attention`), approvals
(`main_approvals`) and a session's life (`main_sessions`); review keys live in
`review_actions.ReviewActions`, which the screen owns.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from textual import events, on
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.widget import Widget
from textual.widgets import OptionList

from workbench.core.echo_trace import mark
from workbench.ui import model
from workbench.ui.messages import (
    FrameEvent,
    SessionOutput,
    SessionsChanged,
    ShowSession,
    StatusChanged,
    Tick,
)
from workbench.ui.screens.main_approvals import ApprovalActions
from workbench.ui.screens.main_attention import AttentionJump
from workbench.ui.screens.main_layout import PaneLayout
from workbench.ui.screens.main_sessions import SessionActions
from workbench.ui.screens.review_actions import ReviewActions
from workbench.ui.widgets.diff_panel import DiffPanel
from workbench.ui.widgets.session_list import SessionList
from workbench.ui.widgets.session_pane import SessionPane
from workbench.ui.widgets.status_bar import StatusBar
from workbench.ui.widgets.terminal import TerminalView

# A key typed into a terminal this recently defers the list's 1 s tick, up to TYPING_TICK_S.
TYPING_S = 1.0
TYPING_TICK_S = 5.0

if TYPE_CHECKING:
    from workbench.ui.host import ScreenHost


class MainScreen(PaneLayout, AttentionJump, ApprovalActions, SessionActions):
    AUTO_FOCUS = "#sessions"
    DEFAULT_CSS = """
    MainScreen #body { height: 1fr; }
    MainScreen #right { width: 1fr; height: 1fr; }
    MainScreen .empty { content-align: center middle; color: $text-muted; height: 1fr; }
    MainScreen.-no-sidebar SessionList, MainScreen.-zoomed SessionList { display: none; }
    MainScreen .-zoomed-out { display: none; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit", id="main.quit"),
        Binding("space", "attention", "Needs you", id="main.attention"),
        Binding("enter", "attach", "Attach", id="main.attach"),
        Binding("escape", "focus_list", "List", id="main.focus_list"),
        Binding("g", "toggle_grid", "Grid", id="main.grid"),
        Binding("p", "pin", "Pin", id="main.pin"),
        Binding("z", "zoom", "Zoom", id="main.zoom"),
        Binding("plus,equals_sign", "resize_pane(1)", "Bigger", id="main.grow"),
        Binding("minus", "resize_pane(-1)", "Smaller", id="main.shrink"),
        Binding("right_square_bracket", "cycle_pane(1)", "Next pane", id="main.next_pane"),
        Binding("left_square_bracket", "cycle_pane(-1)", "Previous pane", id="main.prev_pane"),
        Binding("b", "toggle_sidebar", "List", id="main.sidebar"),
        Binding("1", "view('terminal')", "Terminal", id="main.view_terminal"),
        Binding("2", "view('transcript')", "Transcript", id="main.view_transcript"),
        Binding("3", "view('diff')", "Diff", id="main.view_diff"),
        Binding("4", "view('split')", "Side by side", id="main.view_split"),
        Binding("y", "open_approval", "Approve…", id="main.approve"),
        Binding("n", "open_approval", "Deny…", id="main.deny"),
        Binding("m", "send", "Send", id="main.send"),
        Binding("i", "interrupt", "Interrupt", id="main.interrupt"),
        Binding("s", "stop", "Stop", id="main.stop"),
        Binding("r", "restart", "Restart", id="main.restart"),
        Binding("d", "remove", "Remove", id="main.remove"),
        Binding("u", "undo", "Undo review", id="main.undo"),
        Binding("S", "send_review", "Send review", id="main.send_review"),
        Binding("M", "merge", "Merge", id="main.merge"),
        Binding("D", "discard", "Discard", id="main.discard"),
        Binding("C", "check", "Check", id="main.check"),
        Binding("E", "send_check", "Send check", id="main.send_check"),
        Binding("P", "compare", "Attempts", id="main.compare"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.session_list = SessionList(id="sessions")
        self.status = StatusBar(id="status")
        self.right = Container(id="right")
        self.panes: dict[str, SessionPane] = {}
        self.review = ReviewActions(self)
        self._typed_at = self._ticked_at = 0.0

    @property
    def wb(self) -> ScreenHost:
        return cast("ScreenHost", self.app)

    def compose(self) -> Any:
        with Horizontal(id="body"):
            yield self.session_list
            yield self.right
        yield self.status

    def on_mount(self) -> None:
        self.session_list.focus()
        self.sessions_changed()  # the daemon may have answered before this screen mounted

    # data in

    @property
    def focus_id(self) -> str | None:
        return self.wb.layout.focus

    def sessions_changed(self) -> None:
        if not self.right.is_attached:
            return
        wb = self.wb
        sessions = list(wb.sessions.values())
        if wb.layout.focus not in wb.sessions:
            first = model.ordered(sessions)
            wb.layout.focus = first[0]["id"] if first else None
        self.session_list.show(sessions, wb.diff_cache, wb.layout.focus)
        self.refresh_status()
        for sid, pane in self.panes.items():
            if sid in wb.sessions:
                pane.update_session(wb.sessions[sid])
        self.rebuild()

    def refresh_status(self) -> None:
        wb = self.wb
        # The model of the session in focus (what it really talks to); the configured default
        # only when no session is focused, as the one a new built-in session would use.
        cur = self.current()
        model_name = (cur.get("model") or "") if cur is not None else wb.model_name
        self.status.show(list(wb.sessions.values()), wb.daemon_label, wb.link.up, model_name,
                         f"? keys · {wb.key_for('app.attention', 'ctrl+space').split(',')[0]} needs you",
                         list(wb.host_links.values()))

    def tick(self) -> None:
        # The list's ages are all that a tick changes: while someone types into a terminal
        # they wait (up to TYPING_TICK_S), since repainting them takes the loop the echo needs.
        now = time.monotonic()
        if now - self._typed_at < TYPING_S and now - self._ticked_at < TYPING_TICK_S:
            return
        self._ticked_at = now
        self.session_list.show(list(self.wb.sessions.values()), self.wb.diff_cache, None)

    # what the app tells this screen (workbench.ui.messages)

    def on_sessions_changed(self, message: SessionsChanged) -> None:
        self.sessions_changed()
        if message.rebuild:
            self.rebuild(force=True)

    def on_show_session(self, message: ShowSession) -> None:
        sid = message.session_id
        self.show_session(sid)
        if message.focus == "card" and sid in self.panes:
            self.call_after_refresh(self.panes[sid].card.focus)
        elif message.focus == "review" and sid in self.panes and self._to_review(sid):
            self.review_diff(sid)
        elif message.focus == "review" and sid in self.panes and self._answers_in_terminal(sid):
            self.call_after_refresh(self.action_attach)  # the next key is the program's answer
        elif message.focus:
            self.session_list.focus()
        if message.attach:
            self.call_after_refresh(self.action_attach)

    def on_status_changed(self, message: StatusChanged) -> None:
        self.refresh_status()

    def on_tick(self, message: Tick) -> None:
        self.tick()

    def on_frame_event(self, message: FrameEvent) -> None:
        mark("ui.applying")
        # The hot path for typing latency (the app routes frames here): apply, mark rows dirty.
        sid = str(message.data.get("session", ""))
        if not sid:
            return
        changed = self.wb.term_state(sid).apply(message.data)
        pane = self.panes.get(sid)
        if pane is not None:
            pane.frame_applied(changed)

    def on_session_output(self, message: SessionOutput) -> None:
        pane = self.panes.get(message.session_id)
        if pane is None:
            return
        if message.event == "diff":
            if pane.view in ("diff", "split"):
                pane.load_diff()
        elif message.event == "log":
            pane.add_log(message.data)
        else:
            pane.transcript.add_delta(str(message.data.get("text", "")))

    # the session in focus (the panes: main_layout.PaneLayout)

    def show_session(self, sid: str) -> None:
        """Make `sid` the focused session and put it in view."""
        wb = self.wb
        wb.layout.focus = sid
        if wb.layout.grid and sid not in self.grid_ids():
            wb.layout.grid = False
        self.session_list.select_session(sid)
        self.rebuild()
        self.refresh_status()

    def current(self) -> model.Session | None:
        sid = self.wb.layout.focus
        return self.wb.sessions.get(sid) if sid else None

    # list and focus tracking

    @on(OptionList.OptionHighlighted, "#sessions")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        sid = self.session_list.highlighted_session
        if sid and sid != self.wb.layout.focus:
            self.wb.layout.focus = sid
            self.refresh_status()
            if not self.wb.layout.grid:
                self.rebuild()
            self.mark_current()
            self.wb.save_layout()

    @on(OptionList.OptionSelected, "#sessions")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_attach()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        node: Any = event.widget
        while node is not None and not isinstance(node, SessionPane):
            node = node.parent
        if isinstance(node, SessionPane) and node.session_id != self.wb.layout.focus:
            self.wb.layout.focus = node.session_id
            self.session_list.select_session(node.session_id)
            self.mark_current()
            self.apply_zoom()
            self.wb.save_layout()

    # terminal messages

    @on(TerminalView.Input)
    def _terminal_input(self, event: TerminalView.Input) -> None:
        self._jump_back = None  # typed into a terminal: the jump key's "press again" window ends
        self._typed_at = time.monotonic()
        self.send_to_terminal(event.session_id, event.data)

    def send_to_terminal(self, sid: str, data: bytes) -> None:
        s = self.wb.sessions.get(sid)
        pane = self.panes.get(sid)
        if s is not None and not model.accepts_keys(s):
            # One notice in the pane, not an error per keystroke.
            if pane is not None:
                pane.show_notice(model.keys_refused(s, self._detach_label()))
            return

        def failed(e: Exception) -> None:
            p = self.panes.get(sid)
            if p is not None:
                p.show_notice(f"keys not sent: {e}")
            else:
                self.wb.report_error(e)

        self.wb.link.send_keys(sid, data, failed)

    @on(DiffPanel.Rejected)
    def _rejected(self, event: DiffPanel.Rejected) -> None:
        self.review.rejected(event.session_id, event.what)

    def _detach_label(self) -> str:
        from workbench.ui.screens.help import key_label

        return key_label(self.wb.detach_key)

    @on(TerminalView.Detached)
    def _detached(self, event: TerminalView.Detached) -> None:
        self.session_list.focus()
        self.notify("detached from the terminal", timeout=2)

    @on(TerminalView.SizeWanted)
    def _size_wanted(self, event: TerminalView.SizeWanted) -> None:
        self.wb.resize_session(event.session_id, event.cols, event.rows)

    @on(TerminalView.Copied)
    def _copied(self, event: TerminalView.Copied) -> None:
        self.notify(f"copied {len(event.text)} characters", timeout=2)

    # actions

    # review actions (screens/review_actions.py)

    def action_undo(self) -> None:
        self.review.undo()

    def action_send_review(self) -> None:
        self.review.send_review()

    def action_merge(self) -> None:
        self.review.merge()

    def action_discard(self) -> None:
        self.review.discard()

    def action_check(self) -> None:
        self.review.check()

    def action_send_check(self) -> None:
        self.review.send_check()

    def action_compare(self) -> None:
        self.review.compare()

    def action_quit(self) -> None:
        self.app.exit()

    def action_attention(self) -> None:
        self.wb.action_attention()

    def action_attach(self) -> None:
        s = self.current()
        if s is None:
            return
        self.show_session(s["id"])
        pane = self.panes.get(s["id"])
        if pane is None:
            return
        if pane.view == "diff":
            pane.focus_default()
            return
        if pane.view == "transcript" and not model.is_builtin(s):
            pane.view = "terminal"
            self.wb.layout.views[s["id"]] = "terminal"
        if model.is_builtin(s):
            if pane.view == "terminal":  # no program to type into: its transcript is the session
                pane.view = "transcript"
                self.wb.layout.views[s["id"]] = "transcript"
            pane.focus_default()
        elif not model.accepts_keys(s):
            state = model.state_of(s)
            pane.show_notice("starting — attach again in a moment" if state == "starting"
                             else f"{model.STATE_ICONS[state]} {state} — r restarts it")
        else:
            self.call_after_refresh(pane.terminal.focus)

    def focus_pane(self, sid: str) -> Widget | None:
        pane = self.panes.get(sid)
        if pane is not None:
            pane.focus_default()
        return pane
