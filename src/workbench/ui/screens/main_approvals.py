"""Approvals on the main screen: the approval card's answers (approve, always, deny, deny
with a reason the agent reads) sent to the daemon, and the key that opens the card."""

from __future__ import annotations

from textual import on, work

from workbench.errors import WorkbenchError
from workbench.protocol import agent as pa
from workbench.ui import model
from workbench.ui.daemon_link import NotAvailable
from workbench.ui.dialogs import LineInputScreen
from workbench.ui.screens.main_part import MainScreenPart
from workbench.ui.widgets.approval_card import ApprovalCard


class ApprovalActions(MainScreenPart):
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
