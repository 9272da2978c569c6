"""The suggestions inbox (`!`): the work the daemon found in a repository (a failing check,
linter problems, TODOs, CI, issues, a log), the highlighted one's evidence beside the list.
`enter` starts a session on its prompt with the agent last used in the new-session dialog,
`a` asks for a number of attempts, `e` opens the new-session dialog with the prompt to edit
first, `x` dismisses it for good, `r` scans again with the repository's check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench.core.escapes import one_line, strip_escapes
from workbench.errors import WorkbenchError
from workbench.protocol import suggest as ps
from workbench.ui.dialogs import LineInputScreen
from workbench.ui.messages import SessionsChanged, ShowSession
from workbench.ui.screens.new_session import NewSessionForm, NewSessionScreen

if TYPE_CHECKING:
    from workbench.ui.daemon_link import DaemonLink
    from workbench.ui.host import ScreenHost

SOURCE_STYLE = {"check": "$error", "ci": "$error", "lint": "$warning", "log": "$warning", "issue": "$primary",
                "todo": "$text-muted"}


def inbox_repo(host: ScreenHost) -> str | None:
    """The repository the inbox shows: the focused session's, else the current directory's."""
    cur = host.sessions.get(host.layout.focus or "")
    if cur:
        return str(cur["repo"])
    cwd = Path.cwd()
    if (cwd / ".git").exists():
        return str(cwd)
    first = next(iter(host.sessions.values()), None)
    return str(first["repo"]) if first else None


async def suggestion_count(link: DaemonLink, repo: str) -> int | None:
    """How many suggestions `repo` has now (None if unknown); starts a scan if HEAD moved,
    without waiting for it."""
    try:
        reply = await link.request(ps.SUGGEST, ps.SuggestParams(repo=repo, wait=False))
    except (WorkbenchError, KeyError, OSError):  # a hint only: never an error for the person
        return None
    return len(reply["suggestions"])


def row(s: ps.Suggestion) -> Content:
    started = f"  ▶ {len(s['sessions'])}" if s["sessions"] else ""
    return Content.assemble((f"{s['source']:<5} ", SOURCE_STYLE.get(s["source"], "")), one_line(s["title"], 60),
                            (started, "$success"))


def detail(s: ps.Suggestion) -> Content:
    lines = [Content.assemble((one_line(s["title"], 200), "bold")),
             Content.assemble((f"{s['source']} · {s['id']}", "$text-muted")), Content("")]
    lines += [Content(ln) for ln in strip_escapes(s["evidence"]).splitlines()[:60]]
    return Content("\n").join(lines)


class SuggestionsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    SuggestionsScreen { align: center middle; }
    SuggestionsScreen > Vertical { width: 96%; height: 90%; border: round $primary; background: $surface;
                                   padding: 0 1; }
    SuggestionsScreen Horizontal { height: 1fr; }
    SuggestionsScreen OptionList, SuggestionsScreen OptionList:focus { width: 1fr; border: none;
                                                                       background: $surface; }
    SuggestionsScreen VerticalScroll { width: 1fr; border-left: solid $panel-lighten-2; padding: 0 1; }
    """
    BINDINGS = [
        Binding("enter", "start", "Start", id="suggest.start"),
        Binding("a", "attempts", "Attempts", id="suggest.attempts"),
        Binding("e", "edit", "Edit prompt", id="suggest.edit"),
        Binding("x", "dismiss_one", "Dismiss", id="suggest.dismiss"),
        Binding("r", "refresh", "Scan again", id="suggest.refresh"),
        Binding("escape,q", "close", "Close", id="suggest.close"),
    ]

    def __init__(self, repo: str) -> None:
        super().__init__()
        self.repo = repo
        self.items: list[ps.Suggestion] = []
        self.header = Static(Content.assemble(("Suggestions", "bold"), ("   scanning…", "dim")), id="suggest-head")

    @property
    def host(self) -> ScreenHost:
        return cast("ScreenHost", self.app)

    def compose(self) -> Any:
        with Vertical():
            yield self.header
            with Horizontal():
                yield OptionList(id="suggest-list")
                with VerticalScroll():
                    yield Static("", id="suggest-detail")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.load(refresh=False)

    @work(exclusive=True, group="suggest-load", exit_on_error=False)
    async def load(self, refresh: bool) -> None:
        try:
            reply = await self.host.link.request(ps.SUGGEST, ps.SuggestParams(repo=self.repo, refresh=refresh))
        except WorkbenchError as e:
            self.header.update(Content.assemble(("Suggestions", "bold"), (f"   {one_line(str(e), 200)}", "$error")))
            return
        self.show(reply)

    def show(self, reply: ps.SuggestReply) -> None:
        self.items = list(reply["suggestions"])
        n = len(self.items)
        keys = "enter start · a attempts · e edit prompt · x dismiss · r scan with the check · esc close"
        self.header.update(Content.assemble(
            ("Suggestions", "bold"), f"  {n} for {one_line(reply['repo'], 60)}",
            (f" · {reply['dismissed']} dismissed" if reply["dismissed"] else "", "dim"),
            (" · scanning…" if reply["scanning"] else "", "dim"), (f"\n{keys}", "dim")))
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options([Option(row(s), id=s["id"]) for s in self.items])
        if self.items:
            ol.highlighted = 0
        self._show_detail()
        setter = getattr(self.app, "set_suggestion_count", None)
        if callable(setter):
            setter(n)

    def current(self) -> ps.Suggestion | None:
        i = self.query_one(OptionList).highlighted
        return self.items[i] if i is not None and 0 <= i < len(self.items) else None

    def _show_detail(self) -> None:
        s = self.current()
        self.query_one("#suggest-detail", Static).update(detail(s) if s else Content("nothing to do here"))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_detail()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_start()

    # actions

    def _agent(self) -> str:
        return self.host.layout.last_new.get("agent", "")

    def action_start(self) -> None:
        s = self.current()
        if s is not None:
            self.start(s["id"], self._agent(), 1, "")

    def action_attempts(self) -> None:
        s = self.current()
        if s is None:
            return

        def chosen(text: str | None) -> None:
            if text and text.strip().isdigit():
                self.start(s["id"], self._agent(), int(text.strip()), "")
            elif text:
                self.app.notify(f"not a number of attempts: {one_line(text, 20)}", severity="warning")

        self.app.push_screen(LineInputScreen("How many attempts?", "2 to 10", value="3"), chosen)

    def action_edit(self) -> None:
        s = self.current()
        if s is None:
            return
        form = NewSessionForm(repo=s["repo"], prompt=s["prompt"], agent=self._agent() or "shell")

        def edited(f: NewSessionForm | None) -> None:
            if f is not None:
                self.start(s["id"], f.agent, 1, f.prompt)

        self.app.push_screen(NewSessionScreen(form), edited)

    def action_dismiss_one(self) -> None:
        s = self.current()
        if s is not None:
            self.dismiss_suggestion(s["id"])

    def action_refresh(self) -> None:
        self.header.update(Content.assemble(("Suggestions", "bold"), ("   scanning, the check included…", "dim")))
        self.load(refresh=True)

    def action_close(self) -> None:
        self.dismiss(None)

    @work(group="suggest-act", exit_on_error=False)
    async def dismiss_suggestion(self, sid: str) -> None:
        try:
            await self.host.link.request(ps.SUGGEST_DISMISS, ps.SuggestIdParams(id=sid))
        except WorkbenchError as e:
            self.app.notify(one_line(str(e), 200), severity="error")
            return
        self.load(refresh=False)

    @work(group="suggest-act", exit_on_error=False)
    async def start(self, sid: str, agent: str, attempts: int, prompt: str) -> None:
        params = ps.SuggestStartParams(id=sid)
        if agent.strip():
            params["agent"] = agent.strip()
        if attempts > 1:
            params["attempts"] = attempts
        if prompt.strip():
            params["prompt"] = prompt
        try:
            res = await self.host.link.request(ps.SUGGEST_START, params)
        except WorkbenchError as e:
            self.app.notify(one_line(str(e), 300), severity="error")
            return
        host = self.host
        for info in res["sessions"]:
            host.sessions[info["id"]] = info
        for w in res["warnings"]:
            self.app.notify(one_line(w, 200), severity="warning")
        self.app.notify(f"started {len(res['sessions'])} session(s) on the suggestion", timeout=3)
        self.dismiss(None)
        host.main.post_message(SessionsChanged())
        if res["sessions"]:
            host.main.post_message(ShowSession(res["sessions"][0]["id"]))
