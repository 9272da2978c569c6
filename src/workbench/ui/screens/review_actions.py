"""Session-level review actions of the main screen: undo, send the review, merge, discard,
run the check, send a failing check to the agent, compare attempts and pick the winner.

They act on the focused session, from the list or from its diff. Every one goes through
the daemon, which writes it to the session's event log. The main screen owns one
`ReviewActions` and its `action_*` methods call it; this module never imports the app or
the screen: it sees the screen as a `ReviewScreen` and the app as a `ScreenHost`."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from workbench.core.escapes import one_line
from workbench.errors import WorkbenchError
from workbench.protocol import review as pr
from workbench.protocol.method import Method
from workbench.protocol.session import IdParams
from workbench.ui import model
from workbench.ui.dialogs import ConfirmScreen
from workbench.ui.screens.compare import CompareScreen
from workbench.ui.screens.merge import MergeForm, MergeScreen

P = TypeVar("P")
MERGE_PROBE_BYTES = 1024  # the merge question needs every file's review status, not its hunks
R = TypeVar("R")

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from workbench.ui.host import ScreenHost
    from workbench.ui.widgets.session_pane import SessionPane


def review_progress(diff: pr.DiffReply) -> tuple[int, int]:
    """(reviewed, total) hunks of a diff reply; a file without hunks (binary, mode) counts as one."""
    done = total = 0
    for f in diff.get("files") or []:
        n = max(1, int(f.get("hunk_count") or len(f.get("hunks") or [])))
        total += n
        if f.get("review_status") == "reviewed":
            done += n
        elif f.get("hunks"):
            done += sum(1 for h in f["hunks"] or [] if h.get("reviewed"))
    return done, total


def reads_messages_now(s: model.Session) -> bool:
    """An agent that takes messages (built-in, ACP) and would read one now: its turn is over and
    it asks the person nothing. Terminal agents get the review only by `S`: typed text could
    land in whatever prompt is on their screen."""
    if not model.is_builtin(s) or s.get("turn_active") or isinstance(s.get("approval_pending"), dict):
        return False
    return model.state_of(s) in ("waiting", "review")


class ReviewScreen(Protocol):
    """The screen that owns the actions (MainScreen)."""

    panes: dict[str, SessionPane]

    @property
    def app(self) -> App[Any]: ...

    def current(self) -> model.Session | None: ...
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
    def run_worker(self, work: Any, name: str | None = "", group: str = "default", description: str = "",
                   exit_on_error: bool = True, start: bool = True, exclusive: bool = False,
                   thread: bool = False) -> Worker[Any]: ...


class ReviewActions:
    """The review actions of one screen; workers run on that screen (cancelled with it)."""

    def __init__(self, screen: ReviewScreen) -> None:
        self.screen = screen

    @property
    def wb(self) -> ScreenHost:
        return cast("ScreenHost", self.screen.app)

    def current(self) -> model.Session | None:
        return self.screen.current()

    def notify(self, message: str, *, severity: Any = "information", timeout: float | None = None) -> None:
        self.screen.notify(message, severity=severity, timeout=timeout)

    def _run(self, coro: Coroutine[Any, Any, None], group: str) -> None:
        self.screen.run_worker(coro, group=group, exit_on_error=False)

    def _reload_diff(self, sid: str) -> None:
        pane = self.screen.panes.get(sid)
        if pane is not None and pane.view in ("diff", "split"):
            pane.load_diff()

    async def _request(self, spec: Method[P, R], params: P) -> R | None:
        try:
            return await self.wb.request(spec, params)
        except WorkbenchError as e:
            self.wb.report_error(e)
            return None

    # undo and send

    def undo(self) -> None:
        self._run(self._undo_work(), "review-act")

    async def _undo_work(self) -> None:
        s = self.current()
        if s is None:
            return
        res = await self._request(pr.UNDO, IdParams(id=s["id"]))
        if res is not None:
            what = str(res.get("undone") or "action").replace("_", " ")
            self.notify(f"{model.name_of(s)}: undid the last {what}", timeout=3)
            self._reload_diff(s["id"])

    def send_review(self) -> None:
        self._run(self._send_review_work(), "review-act")

    async def _send_review_work(self) -> None:
        s = self.current()
        if s is None:
            return
        preview = await self._request(pr.REVIEW, pr.ReviewParams(id=s["id"]))
        if preview is None:
            return
        text = str(preview.get("message") or "")
        if not text:
            self.notify("nothing to send: reject a hunk (x) or comment (c) first", timeout=4)
            return
        sid, name = s["id"], model.name_of(s)

        def done(yes: bool | None) -> None:
            if yes:
                self._deliver_review(sid, name)

        self.screen.app.push_screen(ConfirmScreen(
            f"Send this review to {name}? ({preview.get('rejections', 0)} rejected, "
            f"{preview.get('comments', 0)} comments)", text, yes="send it", mild=True), done)

    def rejected(self, sid: str, what: str) -> None:
        """A hunk was rejected: an idle agent is sent the review at once (no further key); a
        busy one gets it with the rest of the review (S)."""
        s = self.wb.sessions.get(sid)
        if s is None or not reads_messages_now(s):
            self.notify(f"{what}; queued with the review (S sends it)", timeout=4)
            return
        self._run(self._deliver_review_work(sid, model.name_of(s), what), "review-act")

    def _deliver_review(self, sid: str, name: str) -> None:
        self._run(self._deliver_review_work(sid, name), "review-act")

    async def _deliver_review_work(self, sid: str, name: str, what: str = "") -> None:
        res = await self._request(pr.REVIEW, pr.ReviewParams(id=sid, send=True))
        if res is not None:
            lead = f"{what}; sent" if what else "review sent"
            self.notify(f"{lead} to {name} ({res.get('via') or 'message'})", timeout=4)
            self._reload_diff(sid)

    # finish

    def merge(self, form: MergeForm | None = None, error: str = "") -> None:
        if form is not None:  # back after a failed merge: no second question
            self._open_merge(form, error)
            return
        s = self.current()
        if s is not None:
            self._run(self._merge_start_work(s), "review-act")

    async def _merge_start_work(self, s: model.Session) -> None:
        counts = model.diff_counts(s, self.wb.diff_cache)
        summary = (f"{s.get('files_changed', '?')} files +{counts[0]} -{counts[1]} on {s.get('branch', '')}"
                   if counts else str(s.get("branch", "")))
        form = MergeForm(str(s["id"]), model.name_of(s), summary=summary)
        diff = await self._request(pr.DIFF, pr.DiffParams(id=s["id"], max_bytes=MERGE_PROBE_BYTES))
        if diff is None:
            return
        done, total = review_progress(diff)
        if done >= total:
            self._open_merge(form)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._open_merge(form)

        # Asked once, before the message: a merge of what nobody looked at is rarely meant.
        self.screen.app.push_screen(ConfirmScreen(
            f"{total - done} of {total} hunks not reviewed — merge anyway?",
            "3 in the diff view shows them; a marks a hunk reviewed.", yes="merge anyway", mild=True), answer)

    def _open_merge(self, form: MergeForm, error: str = "") -> None:
        def done(result: MergeForm | None) -> None:
            if result is not None:
                self._merge(result)

        self.screen.app.push_screen(MergeScreen(form, error), done)

    def _merge(self, form: MergeForm) -> None:
        self._run(self._merge_work(form), "review-act")

    async def _merge_work(self, form: MergeForm) -> None:
        try:
            res = await self.wb.request(pr.MERGE, form.params())
        except WorkbenchError as e:
            # Nothing is lost: the dialog comes back with the message and the choices.
            self.merge(form, one_line(str(e), 600))
            return
        if res.get("pr"):
            self.notify(f"{form.name}: pull request {one_line(str(res['pr']), 100)}", timeout=8)
        else:
            self.notify(f"{form.name}: merged into {res.get('base_branch', '?')} "
                        f"({res.get('strategy', '')}, {str(res.get('commit', ''))[:10]})", timeout=6)
        if res.get("warning"):
            self.notify(one_line(str(res["warning"]), 300), severity="warning", timeout=8)
        self._reload_diff(form.session_id)

    def discard(self) -> None:
        s = self.current()
        if s is None:
            return
        sid, name = s["id"], model.name_of(s)
        counts = model.diff_counts(s, self.wb.diff_cache)
        what = f" ({s.get('files_changed', '?')} files +{counts[0]} -{counts[1]})" if counts else ""

        def done(yes: bool | None) -> None:
            if yes:
                self._discard(sid, name)

        self.screen.app.push_screen(ConfirmScreen(
            f"Discard every change of {name}{what}? The worktree and its branch go back to the base "
            "commit; untracked files are deleted.", yes="discard"), done)

    def _discard(self, sid: str, name: str) -> None:
        self._run(self._discard_work(sid, name), "review-act")

    async def _discard_work(self, sid: str, name: str) -> None:
        res = await self._request(pr.DISCARD, IdParams(id=sid))
        if res is not None:
            self.notify(f"{name}: discarded {res.get('files', 0)} files", timeout=4)
            self._reload_diff(sid)

    # checks

    def check(self) -> None:
        self._run(self._check_work(), "check")

    async def _check_work(self) -> None:
        s = self.current()
        if s is None:
            return
        name = model.name_of(s)
        self.notify(f"{name}: check running…", timeout=3)
        res = await self._request(pr.CHECK, IdParams(id=s["id"]))
        if res is None:
            return
        status = str(res.get("status", "?"))
        self.notify(f"{name}: check {status}" + (" — E sends it to the agent" if status != "passed" else ""),
                    severity="information" if status == "passed" else "warning", timeout=5)
        self._reload_diff(s["id"])

    def send_check(self) -> None:
        self._run(self._send_check_work(), "review-act")

    async def _send_check_work(self) -> None:
        s = self.current()
        if s is None:
            return
        res = await self._request(pr.SEND_CHECK, IdParams(id=s["id"]))
        if res is not None:
            self.notify(f"sent the failing check to {model.name_of(s)} ({res.get('via') or 'message'})", timeout=4)

    # attempts

    def compare(self) -> None:
        self._run(self._compare_work(), "review-act")

    async def _compare_work(self) -> None:
        s = self.current()
        if s is None:
            return
        res = await self._request(pr.COMPARE, pr.GroupParams(id=s["id"]))
        if res is None:
            return

        def done(winner: str | None) -> None:
            if winner:
                self._confirm_pick(winner, res)

        self.screen.app.push_screen(CompareScreen(res, s["id"]), done)

    def _confirm_pick(self, winner: str, res: pr.CompareResult) -> None:
        entries = [e for e in res.get("sessions") or [] if isinstance(e, dict)]
        name = next((one_line(str(e.get("name")), 40) for e in entries if e.get("id") == winner), winner)
        losers = ", ".join(one_line(str(e.get("name")), 40) for e in entries if e.get("id") != winner)

        def done(yes: bool | None) -> None:
            if yes:
                self._pick(winner, name)

        self.screen.app.push_screen(ConfirmScreen(
            f"Pick {name}? The other attempts ({losers or 'none'}) are removed with their worktrees "
            "and branches.", yes="pick it"), done)

    def _pick(self, winner: str, name: str) -> None:
        self._run(self._pick_work(winner, name), "review-act")

    async def _pick_work(self, winner: str, name: str) -> None:
        res = await self._request(pr.PICK, IdParams(id=winner))
        if res is not None:
            gone = ", ".join(one_line(str(r.get("name")), 30) for r in res.get("removed") or [])
            self.notify(f"{name} wins" + (f"; removed {gone}" if gone else ""), timeout=5)
            self.wb.goto_session(winner)
