"""Session-level review actions of the main screen: undo, send the review, merge, discard,
run the check, send a failing check to the agent, compare attempts and pick the winner.

They act on the focused session, from the list or from its diff. Every one goes through
the daemon, which writes it to the session's event log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from workbench.core.escapes import one_line
from workbench.errors import WorkbenchError
from workbench.ui import model
from workbench.ui.screens.compare import CompareScreen
from workbench.ui.screens.dialogs import ConfirmScreen
from workbench.ui.screens.merge import MergeForm, MergeScreen

if TYPE_CHECKING:
    from workbench.ui.app import WorkbenchApp
    from workbench.ui.widgets.session_pane import SessionPane


class ReviewActions:
    """Mixed into MainScreen."""

    if TYPE_CHECKING:
        panes: dict[str, SessionPane]

        @property
        def wb(self) -> WorkbenchApp: ...

        def current(self) -> dict[str, Any] | None: ...
        def notify(self, message: str, *, title: str = "", severity: Any = "information",
                   timeout: float | None = None, markup: bool = True) -> None: ...

    def _reload_diff(self, sid: str) -> None:
        pane = self.panes.get(sid)
        if pane is not None and pane.view in ("diff", "split"):
            pane.load_diff()

    async def _call(self, method: str, **params: Any) -> Any | None:
        try:
            return await self.wb.call(method, **params)
        except WorkbenchError as e:
            self.wb.report_error(e)
            return None

    # undo and send

    @work(exit_on_error=False, group="review-act")
    async def action_undo(self) -> None:
        s = self.current()
        if s is None:
            return
        res = await self._call("undo", id=s["id"])
        if res is not None:
            what = str(res.get("undone") or "action").replace("_", " ")
            self.notify(f"{model.name_of(s)}: undid the last {what}", timeout=3)
            self._reload_diff(s["id"])

    @work(exit_on_error=False, group="review-act")
    async def action_send_review(self) -> None:
        s = self.current()
        if s is None:
            return
        preview = await self._call("review", id=s["id"])
        if preview is None:
            return
        text = str(preview.get("message") or "")
        if not text:
            self.notify("nothing to send: reject a hunk (x) or comment (c) first", timeout=4)
            return
        sid, name = s["id"], model.name_of(s)

        def done(yes: bool | None) -> None:
            if yes:
                self._send_review(sid, name)

        self.wb.push_screen(ConfirmScreen(
            f"Send this review to {name}? ({preview.get('rejections', 0)} rejected, "
            f"{preview.get('comments', 0)} comments)", text, yes="send it", mild=True), done)

    @work(exit_on_error=False, group="review-act")
    async def _send_review(self, sid: str, name: str) -> None:
        res = await self._call("review", id=sid, send=True)
        if res is not None:
            self.notify(f"review sent to {name} ({res.get('via') or 'message'})", timeout=4)
            self._reload_diff(sid)

    # finish

    def action_merge(self, form: MergeForm | None = None, error: str = "") -> None:
        s = self.current()
        if s is None and form is None:
            return
        if form is None:
            assert s is not None
            counts = model.diff_counts(s, self.wb.diff_cache)
            summary = (f"{s.get('files_changed', '?')} files +{counts[0]} -{counts[1]} on {s.get('branch', '')}"
                       if counts else str(s.get("branch", "")))
            form = MergeForm(str(s["id"]), model.name_of(s), summary=summary)

        def done(result: MergeForm | None) -> None:
            if result is not None:
                self._merge(result)

        self.wb.push_screen(MergeScreen(form, error), done)

    @work(exit_on_error=False, group="review-act")
    async def _merge(self, form: MergeForm) -> None:
        try:
            res = await self.wb.call("merge", **form.params())
        except WorkbenchError as e:
            # Nothing is lost: the dialog comes back with the message and the choices.
            self.action_merge(form, one_line(str(e), 600))
            return
        if res.get("pr"):
            self.notify(f"{form.name}: pull request {one_line(str(res['pr']), 100)}", timeout=8)
        else:
            self.notify(f"{form.name}: merged into {res.get('base_branch', '?')} "
                        f"({res.get('strategy', '')}, {str(res.get('commit', ''))[:10]})", timeout=6)
        if res.get("warning"):
            self.notify(one_line(str(res["warning"]), 300), severity="warning", timeout=8)
        self._reload_diff(form.session_id)

    def action_discard(self) -> None:
        s = self.current()
        if s is None:
            return
        sid, name = s["id"], model.name_of(s)
        counts = model.diff_counts(s, self.wb.diff_cache)
        what = f" ({s.get('files_changed', '?')} files +{counts[0]} -{counts[1]})" if counts else ""

        def done(yes: bool | None) -> None:
            if yes:
                self._discard(sid, name)

        self.wb.push_screen(ConfirmScreen(
            f"Discard every change of {name}{what}? The worktree and its branch go back to the base "
            "commit; untracked files are deleted.", yes="discard"), done)

    @work(exit_on_error=False, group="review-act")
    async def _discard(self, sid: str, name: str) -> None:
        res = await self._call("discard", id=sid)
        if res is not None:
            self.notify(f"{name}: discarded {res.get('files', 0)} files", timeout=4)
            self._reload_diff(sid)

    # checks

    @work(exit_on_error=False, group="check")
    async def action_check(self) -> None:
        s = self.current()
        if s is None:
            return
        name = model.name_of(s)
        self.notify(f"{name}: check running…", timeout=3)
        res = await self._call("check", id=s["id"])
        if res is None:
            return
        status = str(res.get("status", "?"))
        self.notify(f"{name}: check {status}" + (" — E sends it to the agent" if status != "passed" else ""),
                    severity="information" if status == "passed" else "warning", timeout=5)
        self._reload_diff(s["id"])

    @work(exit_on_error=False, group="review-act")
    async def action_send_check(self) -> None:
        s = self.current()
        if s is None:
            return
        res = await self._call("send_check", id=s["id"])
        if res is not None:
            self.notify(f"sent the failing check to {model.name_of(s)} ({res.get('via') or 'message'})", timeout=4)

    # attempts

    @work(exit_on_error=False, group="review-act")
    async def action_compare(self) -> None:
        s = self.current()
        if s is None:
            return
        res = await self._call("compare", id=s["id"])
        if res is None:
            return

        def done(winner: str | None) -> None:
            if winner:
                self._confirm_pick(winner, res)

        self.wb.push_screen(CompareScreen(res, s["id"]), done)

    def _confirm_pick(self, winner: str, res: dict[str, Any]) -> None:
        entries = [e for e in res.get("sessions") or [] if isinstance(e, dict)]
        name = next((one_line(str(e.get("name")), 40) for e in entries if e.get("id") == winner), winner)
        losers = ", ".join(one_line(str(e.get("name")), 40) for e in entries if e.get("id") != winner)

        def done(yes: bool | None) -> None:
            if yes:
                self._pick(winner, name)

        self.wb.push_screen(ConfirmScreen(
            f"Pick {name}? The other attempts ({losers or 'none'}) are removed with their worktrees "
            "and branches.", yes="pick it"), done)

    @work(exit_on_error=False, group="review-act")
    async def _pick(self, winner: str, name: str) -> None:
        res = await self._call("pick", id=winner)
        if res is not None:
            gone = ", ".join(one_line(str(r.get("name")), 30) for r in res.get("removed") or [])
            self.notify(f"{name} wins" + (f"; removed {gone}" if gone else ""), timeout=5)
            self.wb.goto_session(winner)
