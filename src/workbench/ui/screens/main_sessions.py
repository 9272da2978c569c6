"""A session's life from the main screen: a new one sized to its pane, a line sent to it,
interrupt, stop, restart and remove (after a confirmation)."""

from __future__ import annotations

from textual import work

from workbench.errors import WorkbenchError
from workbench.protocol import agent as pa
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.method import Method
from workbench.ui import model
from workbench.ui.daemon_link import NotAvailable
from workbench.ui.dialogs import ConfirmScreen, LineInputScreen
from workbench.ui.messages import CreateSession
from workbench.ui.screens.main_part import MainScreenPart


class SessionActions(MainScreenPart):
    def on_create_session(self, message: CreateSession) -> None:
        # A new session starts at the size its pane will have (the right side, less borders).
        params, right = message.params, self.right.size
        if right.width >= 20 and right.height >= 8:
            params["cols"], params["rows"] = right.width - 2, right.height - 3
        message.create(params)

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
