"""The Textual app: a client of the daemon. Quitting leaves every session running."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

# Textual repaints at most MAX_FPS times a second, on a fixed grid: at its default of 60 an
# echo waited up to 16 ms for the next slot. Read when textual is first imported (here).
os.environ.setdefault("TEXTUAL_FPS", "120")

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from workbench import config as config_mod
from workbench import paths
from workbench.core import gc_pauses
from workbench.core.escapes import one_line
from workbench.errors import WorkbenchError
from workbench.protocol import agent as pa
from workbench.protocol import hosts as ph
from workbench.protocol import review as pr
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.hosts import HostLink
from workbench.protocol.method import Method
from workbench.protocol.review import DiffParams, DiffReply
from workbench.protocol.session import LogEntry, NewParams
from workbench.protocol.terminal import ScrollbackResult
from workbench.ui import layout_state, model
from workbench.ui.commands import WorkbenchCommands
from workbench.ui.daemon_link import DaemonLink, NotAvailable
from workbench.ui.keymap import DEFAULT_KEYS, detach_key, resolve_keymap
from workbench.ui.messages import (
    CreateSession,
    DaemonDown,
    DaemonEvent,
    DaemonUp,
    FrameEvent,
    SessionOutput,
    SessionsChanged,
    ShowSession,
    StatusChanged,
    Tick,
)
from workbench.ui.screens.help import HelpScreen
from workbench.ui.screens.main import MainScreen
from workbench.ui.screens.new_session import NewSessionForm, NewSessionScreen
from workbench.ui.screens.suggestions import SuggestionsScreen, inbox_repo, suggestion_count
from workbench.ui.term_model import TermState
from workbench.ui.themes import APP_VARIABLES, DEFAULT_THEME, load_themes

log = logging.getLogger(__name__)

# Methods that can take long (a check run, a merge, diffs of every attempt): each gets a
# connection of its own so keystrokes never wait behind them.
P = TypeVar("P")
R = TypeVar("R")
NOTE_REPEAT_S = 5.0  # the same notice again within this many seconds is dropped
NOTE_BURST = (5, 3.0)  # at most 5 notices in 3 seconds
SUGGEST_POLL_S = 15.0  # the status bar's count of suggestions (the daemon caches them by HEAD)


class WorkbenchApp(App[None], inherit_bindings=False):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "workbench"
    ESCAPE_TO_MINIMIZE = False  # escape belongs to the program in a zoomed terminal
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.palette"),
        Binding("question_mark,f1", "help", "Keys", id="app.help"),
        Binding("ctrl+space,ctrl+@", "attention", "Needs you", id="app.attention"),
        Binding("ctrl+n", "new_session", "New", id="app.new_session"),
        Binding("f9", "next_theme", "Theme", id="app.theme"),
        Binding("f5", "restart_daemon", "Daemon", id="app.restart_daemon"),
        Binding("exclamation_mark", "suggestions", "Suggestions", id="app.suggestions"),
    ]

    def __init__(self, focus_session: str | None = None, *, strict: bool = False,
                 cfg: config_mod.Config | None = None) -> None:
        super().__init__()
        self.attach_to = focus_session
        self.strict = strict or bool(os.environ.get("WORKBENCH_UI_STRICT"))
        self.notices: list[str] = []
        if cfg is None:
            try:
                cfg = config_mod.load()
            except WorkbenchError as e:
                self.notices.append(f"config ignored: {e}")
                cfg = config_mod.Config()
        self.cfg = cfg
        self.user_keymap, notes = resolve_keymap(cfg.keymap)
        self.notices += notes
        self.detach_key, note = detach_key(cfg.ui.detach_key, self.user_keymap)
        if note:
            self.notices.append(note)
        self.approval_arm_ms = cfg.ui.approval_arm_ms
        self.layout = layout_state.load()
        self.sessions: dict[str, model.Session] = {}
        self.terms: dict[str, TermState] = {}
        self.diff_cache: dict[str, tuple[int, int]] = {}
        self.link = DaemonLink(self.post_message)
        self._recent_notes: dict[tuple[str, str, str], float] = {}
        self._note_times: list[float] = []
        self.daemon_label = "connecting…"
        self.host_links: dict[str, HostLink] = {}
        self.wb_themes: list[str] = []
        self.main = MainScreen()
        self._save_timer: Any = None
        try:
            self.model_name = cfg.provider().model or ""
        except WorkbenchError:
            self.model_name = ""

    # setup

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(APP_VARIABLES)

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def on_mount(self) -> None:
        themes, notes = load_themes()
        self.notices += notes
        for theme in themes.values():
            self.register_theme(theme)
        self.wb_themes = sorted(themes)
        wanted = self.layout.theme or self.cfg.ui.theme
        if wanted not in themes:
            self.notices.append(f"theme {one_line(wanted, 40)!r} not found; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self.theme = wanted
        self.set_keymap(self.user_keymap)
        for note in self.notices:
            self.notify(note, severity="warning", timeout=8)
        self.set_interval(1.0, self._tick)
        self.set_interval(5.0, self._poll_status)
        self.set_interval(SUGGEST_POLL_S, self._poll_suggestions)
        self._connect()
        gc_pauses.settle()

    @work(exclusive=True, group="connect", exit_on_error=False)
    async def _connect(self) -> None:
        try:
            await self.link.connect(autostart=True)
        except (WorkbenchError, OSError) as e:
            self.daemon_label = f"down: {one_line(str(e), 60)} (F5 starts it)"
            self.main.post_message(StatusChanged())
            self.notify(f"cannot reach the daemon: {one_line(str(e), 200)}", severity="error")
            self.link.start_reconnecting()

    # PaneHost

    def term_state(self, session_id: str) -> TermState:
        st = self.terms.get(session_id)
        if st is None:
            st = self.terms[session_id] = TermState(session_id)
        return st

    async def fetch_log(self, session_id: str, after: int) -> list[LogEntry]:
        s = self.sessions.get(session_id)
        if s is not None and model.is_builtin(s):
            try:
                return await self.link.request(pa.LOG, ps.EventsParams(id=session_id, after=after))
            except NotAvailable:
                pass
        return await self.link.request(ps.EVENTS, ps.EventsParams(id=session_id, after=after))

    async def fetch_diff(self, session: model.Session, *, paths: list[str] | None = None,
                         max_bytes: int | None = None, offset: int | None = None) -> DiffReply:
        """The daemon's `diff` (the UI never runs git itself), on a connection of its own."""
        sid = str(session["id"])
        params: DiffParams = {"id": sid}
        if paths:
            params["paths"] = paths
        if max_bytes is not None:
            params["max_bytes"] = max_bytes
        if offset is not None:
            params["offset"] = offset
        result = await self.link.request(pr.DIFF, params)
        if not paths:
            totals = model.stat_totals(result.get("stat"))
            if totals is not None:
                self.diff_cache[sid] = totals
        return result

    async def request(self, spec: Method[P, R], params: P) -> R:
        return await self.link.request(spec, params)

    async def fetch_scrollback(self, session_id: str, start: int, count: int) -> ScrollbackResult:
        return await self.link.request(pt.SCROLLBACK, pt.ScrollbackParams(id=session_id, start=start, count=count))

    # daemon events

    def post_message(self, message: Message) -> bool:
        # A frame goes straight to the screen that paints it: the typing path (keystroke, echo,
        # repaint) stays one message hop, as when the app applied frames itself.
        if isinstance(message, FrameEvent):
            return self.main.post_message(message)
        return super().post_message(message)

    async def on_daemon_up(self, message: DaemonUp) -> None:
        first = self.daemon_label == "connecting…"
        self.daemon_label = f"ok · pid {message.info.get('pid', '?')}"
        if not first:
            self.notify("reconnected to the daemon", timeout=3)
        try:
            listing = await self.link.request(ps.LS, ps.NoParams())
        except WorkbenchError as e:
            self.report_error(e)
            return
        self.sessions = {s["id"]: s for s in listing}
        with contextlib.suppress(WorkbenchError):  # remote hosts' links, then kept by `host` events
            self.host_links = {h["name"]: h for h in await self.link.request(ph.HOSTS, ph.HostsParams())}
        self._prev_states = {sid: model.state_of(s) for sid, s in self.sessions.items()}
        self.layout.prune(set(self.sessions))
        target = self._resolve(self.attach_to) if self.attach_to else None
        if self.attach_to and target is None:
            self.notify(f"no session {one_line(self.attach_to, 40)!r}", severity="error")
        if target is not None and not model.is_builtin(self.sessions[target]):
            self.layout.views[target] = "terminal"  # `attach` means its terminal
        self.main.post_message(SessionsChanged(rebuild=True))
        if target is not None:
            self.attach_to = None
            self.main.post_message(ShowSession(target, attach=True))

    def _resolve(self, key: str) -> str | None:
        if key in self.sessions:
            return key
        for s in self.sessions.values():
            if s.get("name") == key:
                return str(s["id"])
        hits = [sid for sid in self.sessions if sid.startswith(key)]
        return hits[0] if len(hits) == 1 else None

    def on_daemon_down(self, message: DaemonDown) -> None:
        self.daemon_label = "down: reconnecting… (F5 starts it)"
        self.notify(f"lost the daemon ({one_line(message.reason, 80)}); reconnecting when it is back",
                    severity="error", timeout=6)
        self.main.post_message(StatusChanged())

    def on_daemon_event(self, message: DaemonEvent) -> None:
        data = message.data
        if message.event == "session" and "id" in data:
            sid = str(data["id"])
            info = cast(model.Session, data)  # a `session` event's data (protocol.events)
            before = getattr(self, "_prev_states", {}).get(sid)
            self.sessions[sid] = info
            state = model.state_of(info)
            self._prev_states = {**getattr(self, "_prev_states", {}), sid: state}
            if state == "waiting" and before not in (None, "waiting"):
                self.announce(info)
            self.main.post_message(SessionsChanged())
        elif message.event == "removed":
            sid = str(data.get("id", ""))
            self.sessions.pop(sid, None)
            self.terms.pop(sid, None)
            self.layout.prune(set(self.sessions))
            self.main.post_message(SessionsChanged())
        elif message.event == "host" and "name" in data:
            self.host_links[str(data["name"])] = cast(HostLink, data)
            self.main.post_message(StatusChanged())
        elif message.event in ("log", "delta", "diff"):
            sid = str(data.get("session", ""))
            if message.event == "diff":
                totals = model.stat_totals(data.get("stat"))
                if totals is not None:
                    self.diff_cache[sid] = totals
            self.main.post_message(SessionOutput(sid, message.event, data))

    def announce(self, s: model.Session) -> None:
        """A session started waiting: toast, bell and a desktop notification, unless in view."""
        if s["id"] == self.layout.focus and self.screen is self.main:
            return
        name = model.name_of(s)
        reason = one_line(str(s.get("reason") or "needs you"), 80)
        self.notify(f"{name}: {reason}", title="needs you", severity="warning", timeout=6)
        if self.cfg.ui.bell:
            self.bell()
        kind = self.cfg.ui.notify
        text = one_line(f"{name}: {reason}", 120).replace(";", ",")
        seq = {"osc9": f"\x1b]9;workbench: {text}\x07",
               "osc777": f"\x1b]777;notify;workbench;{text}\x07"}.get(kind)
        driver = getattr(self, "_driver", None)
        if seq and driver is not None and not self.is_headless:
            driver.write(seq)

    # helpers used by screens

    def report_error(self, e: BaseException) -> None:
        self.notify(one_line(str(e), 300), severity="error", timeout=6)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast, unless the same one was just shown or too many came at once: a failure
        that repeats (a key per keystroke, an event per second) must not stack toasts."""
        now = time.monotonic()
        key = (str(severity), title, message)
        last = self._recent_notes.get(key)
        self._recent_notes[key] = now
        if len(self._recent_notes) > 200:
            self._recent_notes = {k: t for k, t in self._recent_notes.items() if now - t < NOTE_REPEAT_S}
        if last is not None and now - last < NOTE_REPEAT_S:
            return
        self._note_times = [t for t in self._note_times if now - t < NOTE_BURST[1]]
        if len(self._note_times) >= NOTE_BURST[0]:
            return
        self._note_times.append(now)
        # Never markup: notices carry session names, paths and daemon messages.
        self.show_notification(message, title=title, severity=severity, timeout=timeout)

    def show_notification(self, message: str, *, title: str = "", severity: Any = "information",
                          timeout: float | None = None) -> None:
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    @work(group="frames", exit_on_error=False)
    async def watch_frames(self, ids: set[str]) -> None:
        await self.link.set_frame_ids(ids)

    @work(group="resize", exit_on_error=False)
    async def resize_session(self, sid: str, cols: int, rows: int) -> None:
        try:
            await self.link.request(pt.RESIZE, pt.ResizeParams(id=sid, size=f"{cols}x{rows}"))
        except WorkbenchError as e:
            log.debug("resize %s failed: %s", sid, e)

    def key_for(self, binding_id: str, default: str) -> str:
        return self.user_keymap.get(binding_id) or DEFAULT_KEYS.get(binding_id, default)

    def save_layout(self) -> None:
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(0.3, self.save_layout_now)

    def save_layout_now(self) -> None:
        self.layout.theme = self.theme
        try:
            layout_state.save(self.layout)
        except OSError as e:
            log.warning("cannot save the layout: %s", e)

    def _tick(self) -> None:
        if self.sessions:
            self.main.post_message(Tick())

    async def _poll_status(self) -> None:
        if not self.link.up:
            return
        try:
            st = await self.link.request(ps.STATUS, ps.NoParams())
        except WorkbenchError:
            return
        self.daemon_label = f"ok · pid {st.get('pid', '?')} · lag {st.get('loop_lag_ms', 0):.0f}ms"
        with contextlib.suppress(WorkbenchError):  # a broken hosts.toml must not hide the status
            self.host_links = {h["name"]: h for h in await self.link.request(ph.HOSTS, ph.HostsParams())}
        self.main.post_message(StatusChanged())

    # actions

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.user_keymap, self.detach_key))

    def action_attention(self) -> None:
        if self.screen is not self.main:
            return
        nxt = model.next_in_queue(list(self.sessions.values()), self.layout.focus)
        if nxt is None:
            self.notify("nobody needs you right now", timeout=2)
            return
        card = isinstance(nxt.get("approval_pending"), dict)
        self.main.post_message(ShowSession(nxt["id"], focus="card" if card else "review"))

    def goto_session(self, sid: str) -> None:
        if sid in self.sessions:
            self.main.post_message(ShowSession(sid, focus="list"))

    def run_palette_action(self, scope: str, action: str) -> None:
        self.call_later(self.run_action, action, self.main if scope == "main" else self)

    def switch_theme(self, name: str) -> None:
        if name in self.wb_themes:
            self.theme = name
            self.save_layout()
            self.notify(f"theme: {name}", timeout=2)

    def action_next_theme(self) -> None:
        names = self.wb_themes
        cur = names.index(self.theme) if self.theme in names else -1
        self.switch_theme(names[(cur + 1) % len(names)])

    async def action_restart_daemon(self) -> None:
        self.daemon_label = "starting the daemon…"
        self.main.post_message(StatusChanged())
        self._restart()

    @work(exclusive=True, group="connect", exit_on_error=False)
    async def _restart(self) -> None:
        try:
            await self.link.restart()
        except (WorkbenchError, OSError) as e:
            self.daemon_label = "down (F5 starts it)"
            self.main.post_message(StatusChanged())
            self.report_error(e)

    async def action_new_session(self, form: NewSessionForm | None = None, error: str = "") -> None:
        if self.screen is not self.main and form is None:
            return
        if form is None:
            recent: list[str] = []
            try:
                recent = [str(r) for r in await self.link.request(ps.RECENT_REPOS, ps.NoParams())]
            except WorkbenchError:
                pass
            cur = self.sessions.get(self.layout.focus or "")
            cwd = Path.cwd()
            repo = str(cur["repo"]) if cur else recent[0] if recent else (
                str(cwd) if (cwd / ".git").exists() else "")
            d = self.cfg.session
            last = self.layout.last_new
            form = NewSessionForm(repo=repo, agent=last.get("agent") or d.agent, approval=d.approval,
                                  sandbox=d.sandbox, network=d.network, recent=recent,
                                  provider=last.get("provider", ""), model=last.get("model", ""),
                                  host=str(cur.get("host", "")) if cur else "", hosts=sorted(self.host_links))
        self.push_screen(NewSessionScreen(form, error), self._create)

    def _create(self, form: NewSessionForm | None) -> None:
        if form is not None:  # the screen sizes the request to its pane, then `_create_session`
            self.main.post_message(CreateSession(form.params(), partial(self._create_session, form)))

    @work(group="new", exit_on_error=False)
    async def _create_session(self, form: NewSessionForm, params: NewParams) -> None:
        try:
            attempts = form.attempts_params(params)
            if attempts is not None:  # best-of-N: the group's first is shown; compare shows all
                res = await self.link.request(pr.NEW_ATTEMPTS, attempts)
                self.sessions.update({x["id"]: x for x in res["sessions"]})
                s = ps.NewSession(**res["sessions"][0], warnings=res["warnings"])
            else:
                s = await self.link.request(ps.NEW, params)
        except WorkbenchError as e:
            await self.action_new_session(form, one_line(str(e), 300))
            return
        self.sessions[s["id"]] = s
        self.layout.last_new = {"agent": form.agent, "provider": form.provider, "model": form.model}
        self.save_layout()
        for w in s.get("warnings") or []:
            self.notify(one_line(str(w), 200), severity="warning", timeout=6)
        self.notify(f"started {model.name_of(s)}", timeout=3)
        self.main.post_message(SessionsChanged())
        self.main.post_message(ShowSession(s["id"]))

    def action_suggestions(self) -> None:
        repo = inbox_repo(self)
        if self.screen is not self.main:
            return
        if repo is None:
            self.notify("no repository: start a session, or run workbench in one", severity="warning")
            return
        self.push_screen(SuggestionsScreen(repo))

    async def _poll_suggestions(self) -> None:
        repo = inbox_repo(self)
        if repo and self.link.up:
            self.set_suggestion_count(await suggestion_count(self.link, repo))

    def set_suggestion_count(self, n: int | None) -> None:
        if n is not None and n != self.main.status.suggestions:
            self.main.status.suggestions = n
            self.main.post_message(StatusChanged())

    async def action_quit(self) -> None:
        self.exit()

    async def on_unmount(self) -> None:
        self.save_layout_now()
        await self.link.close()

    def _handle_exception(self, error: Exception) -> None:
        # Never a traceback on the user's screen: log it, say so, keep running.
        if self.strict:
            super()._handle_exception(error)
            return
        try:
            path = paths.state_dir() / "ui.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write("".join(traceback.format_exception(error)))
            self.notify(f"internal error: {one_line(str(error), 120)} (details in {path})",
                        severity="error", timeout=10)
        except Exception:
            super()._handle_exception(error)
