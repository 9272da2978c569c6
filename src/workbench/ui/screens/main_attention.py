"""The attention key while attached to a terminal (README "Keys"): a jump to the session
that needs the person when another one does, else the key goes to the program; pressed
again straight away, back to the terminal and the program gets it after all (tmux's prefix
twice). The jump lands on the approval card, on the diff's first hunk not reviewed, or in
the terminal of a terminal agent that asks a question (attached: the next key answers it)."""

from __future__ import annotations

from textual import events, on

from workbench.ui import model
from workbench.ui.keymap import DEFAULT_KEYS
from workbench.ui.messages import ShowSession
from workbench.ui.screens.main_part import MainScreenPart
from workbench.ui.widgets.terminal import TerminalView


class AttentionJump(MainScreenPart):
    # Set by a jump out of an attached terminal: (session, the key's bytes). The jump key
    # pressed again straight away goes back and sends them (tmux's prefix twice).
    _jump_back: tuple[str, bytes] | None = None
    _jump_target = ""  # where that jump went: attached there, the key pressed again comes from it

    def jump_keys(self) -> list[str]:
        spec = self.wb.key_for("app.attention", DEFAULT_KEYS["app.attention"])
        return [k.strip() for k in spec.split(",") if k.strip()]

    @on(TerminalView.JumpKey)
    def _jump_key(self, event: TerminalView.JumpKey) -> None:
        sid = event.session_id
        if self._jump_back is not None and sid in (self._jump_back[0], self._jump_target):
            self._go_back()  # pressed again: before the focus left, or from the terminal it landed in
            return
        nxt = model.next_in_queue(list(self.wb.sessions.values()), sid)
        card = nxt is not None and isinstance(nxt.get("approval_pending"), dict)
        if nxt is None or (nxt["id"] == sid and not card):
            self.send_to_terminal(sid, event.data)  # nobody else waits: Emacs's C-SPC sets the mark
            return
        self._jump_back, self._jump_target = (sid, event.data), nxt["id"]
        self.post_message(ShowSession(nxt["id"], focus="card" if card else "review"))
        key = (self.jump_keys() or ["ctrl+space"])[0]
        self.notify(f"{model.name_of(nxt)} needs you · {key} again: back to "
                    f"{model.name_or_id(self.wb.sessions.get(sid), sid)}, and {key} goes to its program",
                    timeout=5)

    def on_key(self, event: events.Key) -> None:
        # Any key bubbling up here after a jump ends its "press again" window.
        if self._jump_back is not None and event.key in self.jump_keys():
            event.stop()
            event.prevent_default()
            self._go_back()
        self._jump_back = None

    def _go_back(self) -> None:
        """Back to the terminal the jump left, and its program gets the jump key after all."""
        assert self._jump_back is not None
        (sid, data), self._jump_back = self._jump_back, None
        if sid not in self.wb.sessions:
            return
        self.show_session(sid)
        pane = self.panes.get(sid)
        if pane is not None:
            self.call_after_refresh(pane.terminal.focus)
        self.send_to_terminal(sid, data)

    def _answers_in_terminal(self, sid: str) -> bool:
        """Whether `sid` is a terminal agent waiting for an answer typed into its program (a
        question on its screen): the jump attaches, so its next key is the answer."""
        s = self.wb.sessions.get(sid)
        return (s is not None and not model.is_builtin(s) and model.state_of(s) == "waiting"
                and not isinstance(s.get("approval_pending"), dict))

    def _to_review(self, sid: str) -> bool:
        """Whether what `sid` needs is a review: its turn is over and it changed files."""
        s = self.wb.sessions.get(sid)
        return s is not None and bool(s.get("files_changed")) and model.state_of(s) in ("waiting", "review")

    def review_diff(self, sid: str) -> None:
        """The diff of `sid` in view and focused, the cursor on the first hunk not reviewed."""
        pane = self.panes[sid]
        pane.diff.to_first_unreviewed = True
        if pane.view not in ("diff", "split"):
            pane.view = self.wb.layout.views[sid] = "diff"  # loads it; the cursor goes once it is shown
        elif pane.diff.doc is not None and pane.diff.view.first_unreviewed():
            pane.diff.to_first_unreviewed = False
        self.call_after_refresh(pane.diff.view.focus)
        self.wb.save_layout()
