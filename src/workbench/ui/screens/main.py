"""The main screen: the session list on the left, the focused session (or a grid) on the right.

Over 600 lines because it is where every key of the main view lands (list, panes, grid,
approvals, send, stop/restart/remove) and where the app's messages are handled; review keys
already live in `review_actions.ReviewActions`. The next seam is the pane-grid management
(show/rebuild/focus), which could become a widget of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import events, on, work
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import OptionList

from workbench.errors import WorkbenchError
from workbench.protocol import agent as pa
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.method import Method
from workbench.ui import model
from workbench.ui.daemon_link import NotAvailable
from workbench.ui.dialogs import ConfirmScreen, LineInputScreen
from workbench.ui.layout_state import MAX_PANES
from workbench.ui.messages import (
    CreateSession,
    FrameEvent,
    SessionOutput,
    SessionsChanged,
    ShowSession,
    StatusChanged,
    Tick,
)
from workbench.ui.screens.review_actions import ReviewActions
from workbench.ui.widgets.approval_card import ApprovalCard
from workbench.ui.widgets.grid import PaneGrid
from workbench.ui.widgets.session_list import SessionList
from workbench.ui.widgets.session_pane import SessionPane
from workbench.ui.widgets.status_bar import StatusBar
from workbench.ui.widgets.terminal import TerminalView

if TYPE_CHECKING:
    from workbench.ui.host import ScreenHost


class MainScreen(Screen[None]):
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
        self._shown: tuple[Any, ...] = ()
        self.review = ReviewActions(self)

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
        self.status.show(list(wb.sessions.values()), wb.daemon_label, wb.link.up, wb.model_name,
                         f"? keys · {wb.key_for('app.attention', 'ctrl+space').split(',')[0]} needs you",
                         list(wb.host_links.values()))

    def tick(self) -> None:
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
        elif message.focus:
            self.session_list.focus()
        if message.attach:
            self.call_after_refresh(self.action_attach)

    def on_status_changed(self, message: StatusChanged) -> None:
        self.refresh_status()

    def on_tick(self, message: Tick) -> None:
        self.tick()

    def on_frame_event(self, message: FrameEvent) -> None:
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

    def on_create_session(self, message: CreateSession) -> None:
        # A new session starts at the size its pane will have (the right side, less borders).
        params, right = message.params, self.right.size
        if right.width >= 20 and right.height >= 8:
            params["cols"], params["rows"] = right.width - 2, right.height - 3
        message.create(params)

    # layout

    def grid_ids(self) -> list[str]:
        wb = self.wb
        return [p for p in wb.layout.panes if p in wb.sessions][:MAX_PANES]

    def rebuild(self, force: bool = False) -> None:
        """Mount the panes the layout asks for; no-op when nothing visible changed."""
        if not self.right.is_attached:
            return
        wb = self.wb
        self.set_class(not wb.layout.sidebar, "-no-sidebar")
        ids = self.grid_ids() if wb.layout.grid else ([wb.layout.focus] if wb.layout.focus else [])
        ids = [i for i in ids if i in wb.sessions]
        shown = (wb.layout.grid, tuple(ids), tuple(wb.layout.weights.get(i, 1) for i in ids))
        if shown == self._shown and not force:
            return
        self._shown = shown
        had_focus = self.focused
        refocus = had_focus is not None and self.right in had_focus.ancestors
        self.right.remove_children()
        self.panes = {
            sid: SessionPane(wb.sessions[sid], wb, wb.layout.views.get(
                sid, "transcript" if model.is_builtin(wb.sessions[sid]) else "terminal"))
            for sid in ids
        }
        if not ids:
            from textual.widgets import Static

            self.right.mount(Static("No sessions yet. ctrl+n starts one.", classes="empty"))
        elif wb.layout.grid:
            self.right.mount(PaneGrid(list(self.panes.values()), wb.layout.weights))
        else:
            self.right.mount(*self.panes.values())
        wb.watch_frames(set(ids))
        self.mark_current()
        if refocus and wb.layout.focus in self.panes:
            self.call_after_refresh(self.panes[wb.layout.focus].focus_default)
        self.apply_zoom()
        wb.save_layout()

    def mark_current(self) -> None:
        for sid, pane in self.panes.items():
            pane.set_class(sid == self.wb.layout.focus and len(self.panes) > 1, "-current")

    def apply_zoom(self) -> None:
        """Zoom shows the focused pane alone. Not Screen.maximize: that would trap focus in the
        pane, and in a terminal every key then goes to the PTY."""
        wb = self.wb
        zoomed = wb.layout.zoomed and wb.layout.focus in self.panes
        self.set_class(zoomed, "-zoomed")
        single = not wb.layout.grid
        for sid, pane in self.panes.items():
            pane.set_class(zoomed and sid != wb.layout.focus, "-zoomed-out")
            pane.terminal.auto_size = single or (zoomed and sid == wb.layout.focus)
        for grid in self.right.query(PaneGrid):
            grid.update_rows()
        if zoomed or single:
            shown = self.panes.get(wb.layout.focus or "")
            if shown is not None:
                self.call_after_refresh(shown.terminal.want_size)

    def show_session(self, sid: str) -> None:
        """Make `sid` the focused session and put it in view."""
        wb = self.wb
        wb.layout.focus = sid
        if wb.layout.grid and sid not in self.grid_ids():
            wb.layout.grid = False
        self.session_list.select_session(sid)
        self.rebuild()

    def current(self) -> model.Session | None:
        sid = self.wb.layout.focus
        return self.wb.sessions.get(sid) if sid else None

    # list and focus tracking

    @on(OptionList.OptionHighlighted, "#sessions")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        sid = self.session_list.highlighted_session
        if sid and sid != self.wb.layout.focus:
            self.wb.layout.focus = sid
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
        sid = event.session_id
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

        self.wb.link.send_keys(sid, event.data, failed)

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

    # approval card messages

    @on(ApprovalCard.Decision)
    def _decision(self, event: ApprovalCard.Decision) -> None:
        if event.decision != "deny_reason":
            self.decide(event.session_id, event.decision)
            return
        sid = event.session_id

        def send(reason: str | None) -> None:
            if reason is not None:  # escape: nothing is answered
                self.decide(sid, "deny", reason)

        self.app.push_screen(LineInputScreen("Deny: why? (the agent reads this)", "e.g. use the existing helper"),
                             send)

    @on(ApprovalCard.NotArmed)
    def _not_armed(self, event: ApprovalCard.NotArmed) -> None:
        self.notify("the approval card is arming; press the key again in a moment",
                    severity="warning", timeout=2)

    @on(ApprovalCard.Left)
    def _left_card(self, event: ApprovalCard.Left) -> None:
        self.session_list.focus()

    @work(exit_on_error=False)
    async def decide(self, sid: str, decision: str, reason: str = "") -> None:
        name = model.name_or_id(self.wb.sessions.get(sid), sid)
        try:
            if decision == "deny":
                params = pa.DenyParams(id=sid, reason=reason) if reason else pa.DenyParams(id=sid)
                await self.wb.link.request(pa.DENY, params)
            else:
                await self.wb.link.request(pa.APPROVE, pa.ApproveParams(id=sid, always=decision == "always"))
        except NotAvailable:
            self.notify("approvals are not available in this daemon yet", severity="warning")
            return
        except WorkbenchError as e:
            self.wb.report_error(e)
            return
        verb = {"deny": "denied", "always": "approved (always)"}.get(decision, "approved")
        self.notify(f"{name}: {verb}")
        self.session_list.focus()

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

    def action_focus_list(self) -> None:
        if self.wb.layout.zoomed:
            self.wb.layout.zoomed = False
            self.apply_zoom()
            self.wb.save_layout()
        self.session_list.focus()

    def action_toggle_grid(self) -> None:
        wb = self.wb
        if not wb.layout.grid:
            panes = self.grid_ids()
            if len(panes) < 2:
                ordered = [s["id"] for s in model.ordered(list(wb.sessions.values()))]
                if wb.layout.focus in ordered:
                    ordered.remove(wb.layout.focus)
                    ordered.insert(0, wb.layout.focus)
                panes = ordered[:4]
            if len(panes) < 2:
                self.notify("the grid needs at least two sessions", severity="warning")
                return
            wb.layout.panes = panes
        wb.layout.grid = not wb.layout.grid
        wb.layout.zoomed = False
        self.rebuild()

    def action_pin(self) -> None:
        s = self.current()
        if s is None:
            return
        panes = self.wb.layout.panes
        if s["id"] in panes:
            panes.remove(s["id"])
            self.notify(f"{model.name_of(s)} left the grid", timeout=2)
        elif len(panes) >= MAX_PANES:
            self.notify(f"the grid holds {MAX_PANES} panes; unpin one first", severity="warning")
            return
        else:
            panes.append(s["id"])
            self.notify(f"{model.name_of(s)} pinned to the grid ({len(panes)})", timeout=2)
        if self.wb.layout.grid and len(panes) < 2:
            self.wb.layout.grid = False
        self.rebuild()

    def action_zoom(self) -> None:
        if not self.wb.layout.zoomed and self.wb.layout.focus not in self.panes:
            return
        self.wb.layout.zoomed = not self.wb.layout.zoomed
        self.apply_zoom()
        if not self.wb.layout.zoomed and self.wb.layout.sidebar and self.focused is None:
            self.session_list.focus()
        self.wb.save_layout()

    def action_resize_pane(self, delta: int) -> None:
        sid = self.wb.layout.focus
        if not sid or not self.wb.layout.grid:
            self.notify("resize works on grid panes (g)", timeout=2)
            return
        w = self.wb.layout.weights
        w[sid] = max(1, min(5, w.get(sid, 1) + delta))
        self.rebuild()

    def action_cycle_pane(self, step: int) -> None:
        ids = list(self.panes)
        if not ids:
            return
        cur = self.wb.layout.focus
        nxt = ids[(ids.index(cur) + step) % len(ids)] if cur in ids else ids[0]
        self.wb.layout.focus = nxt
        self.session_list.select_session(nxt)
        self.mark_current()
        self.apply_zoom()
        if self.wb.layout.sidebar and not self.wb.layout.zoomed:
            self.session_list.focus()
        self.wb.save_layout()

    def action_toggle_sidebar(self) -> None:
        self.wb.layout.sidebar = not self.wb.layout.sidebar
        self.set_class(not self.wb.layout.sidebar, "-no-sidebar")
        if not self.wb.layout.sidebar and self.wb.layout.focus in self.panes:
            self.panes[self.wb.layout.focus].focus_default()
        elif self.wb.layout.sidebar:
            self.session_list.focus()
        self.wb.save_layout()

    def action_view(self, view: str) -> None:
        sid = self.wb.layout.focus
        if not sid:
            return
        self.wb.layout.views[sid] = view
        if sid in self.panes:
            self.panes[sid].view = view
        self.wb.save_layout()

    def action_open_approval(self) -> None:
        s = self.current()
        if s is None:
            return
        if not isinstance(s.get("approval_pending"), dict):
            self.notify(f"{model.name_of(s)} has no pending approval", timeout=3)
            return
        self.show_session(s["id"])
        pane = self.panes.get(s["id"])
        if pane is not None:
            self.call_after_refresh(pane.card.focus)

    def action_send(self) -> None:
        s = self.current()
        if s is None:
            return
        sid, name = s["id"], model.name_of(s)

        def done(text: str | None) -> None:
            if text:
                self.send_line(sid, text)

        self.app.push_screen(LineInputScreen(f"Message to {name}", "one line; Enter sends"), done)

    @work(exit_on_error=False)
    async def send_line(self, sid: str, text: str) -> None:
        s = self.wb.sessions.get(sid)
        try:
            if s is not None and model.is_builtin(s):
                try:
                    await self.wb.link.request(pa.SEND, pa.SendParams(id=sid, text=text))
                except NotAvailable:
                    self.notify("sending to the built-in agent is not available yet", severity="warning")
                    return
            else:
                await self.wb.link.request(pt.KEYS, pt.KeysParams(id=sid, data=text + "\r"))
        except WorkbenchError as e:
            self.wb.report_error(e)
            return
        self.notify(f"sent to {model.name_or_id(s, sid)}", timeout=2)

    @work(exit_on_error=False)
    async def action_interrupt(self) -> None:
        s = self.current()
        if s is None:
            return
        try:
            if model.is_builtin(s):
                await self.wb.link.request(pa.INTERRUPT, ps.IdParams(id=s["id"]))
            else:
                await self.wb.link.request(pt.KEYS, pt.KeysParams(id=s["id"], data="\x03"))
            self.notify(f"interrupted {model.name_of(s)}", timeout=2)
        except NotAvailable:
            self.notify("interrupt is not available in this daemon yet", severity="warning")
        except WorkbenchError as e:
            self.wb.report_error(e)

    async def _simple(self, spec: Method[ps.IdParams, ps.SessionInfo], done: str) -> None:
        s = self.current()
        if s is None:
            return
        try:
            await self.wb.link.request(spec, ps.IdParams(id=s["id"]))
        except WorkbenchError as e:
            self.wb.report_error(e)
            return
        self.notify(f"{model.name_of(s)}: {done}", timeout=3)

    @work(exit_on_error=False, group="act")
    async def action_stop(self) -> None:
        await self._simple(ps.STOP, "stopped")

    @work(exit_on_error=False, group="act")
    async def action_restart(self) -> None:
        await self._simple(ps.RESTART, "restarted")

    def action_remove(self) -> None:
        s = self.current()
        if s is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.remove_session(s["id"])

        self.app.push_screen(ConfirmScreen(
            f"Remove {model.name_of(s)}? Its worktree and branch {s.get('branch', '')} are deleted."),
            done)

    @work(exit_on_error=False, group="act")
    async def remove_session(self, sid: str) -> None:
        name = model.name_or_id(self.wb.sessions.get(sid), sid)
        try:
            await self.wb.link.request(ps.RM, ps.RmParams(id=sid))
        except WorkbenchError as e:
            self.wb.report_error(e)
            return
        self.notify(f"removed {name}", timeout=3)

    def focus_pane(self, sid: str) -> Widget | None:
        pane = self.panes.get(sid)
        if pane is not None:
            pane.focus_default()
        return pane
