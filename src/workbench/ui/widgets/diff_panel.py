"""A session's diff for review: a summary line, the file list and the check result on the
left, the diff on the right. Review keys on the diff (mark, reject, comment, revert) become
daemon calls here; parsing and highlighting run in a thread before anything is shown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static

from workbench.core.escapes import one_line
from workbench.errors import WorkbenchError
from workbench.protocol import review as pr
from workbench.protocol.method import Method
from workbench.protocol.review import DiffReply
from workbench.ui.dialogs import LineInputScreen
from workbench.ui.diff_doc import PLAIN_FIRST_LINES, DiffDoc, HunkCache, PFile, layout, line_count, prepare
from workbench.ui.model import Session
from workbench.ui.widgets.check_panel import CheckPanel
from workbench.ui.widgets.diff_files import DiffFileList
from workbench.ui.widgets.diff_view import DiffView, Target

REVIEW_KEYS = ("n/p hunk", "]/[ file", "a reviewed", "x reject", "c comment", "X revert file", "u undo",
               "S send review", "M merge", "D discard", "v split")
HELP_KEY = "? keys"


def keys_hint(width: int) -> str:
    """The review keys that fit in `width` cells, in order, then `? keys`: cut at the
    panel's edge, the line lost `? keys`, the way to all the others."""
    shown: list[str] = []
    used = len(HELP_KEY)
    for key in REVIEW_KEYS:
        used += len(key) + 3  # " · "
        if used > width:
            break
        shown.append(key)
    return " · ".join([*shown, HELP_KEY])


P = TypeVar("P")
R = TypeVar("R")
FIRST_PAGE_BYTES = 1_000_000  # the daemon leaves later files' hunks out; they load when opened
QUICK_PAGE_BYTES = 32_000  # the first screen, shown plain while the first page loads


class ReviewHost(Protocol):
    async def fetch_diff(self, session: Session, *, paths: list[str] | None = None,
                         max_bytes: int | None = None, offset: int | None = None) -> DiffReply: ...
    async def request(self, spec: Method[P, R], params: P) -> R: ...
    def report_error(self, e: BaseException) -> None: ...


def _notes(doc: DiffDoc) -> list[tuple[str, str] | str]:
    """Files the diff leaves out (too large, unreadable): a merge refuses while they exist."""
    if not doc.notes:
        return []
    more = f" (+{len(doc.notes) - 1} more)" if len(doc.notes) > 1 else ""
    return [("  ⚠ ", "$warning"), (doc.notes[0] + more, "$warning")]


def summary_content(doc: DiffDoc, split: bool) -> Content:
    files = len(doc.files)
    if not files:
        return Content.assemble(("no changes", "$text-muted"), ("  against ", "dim"), (doc.base or "base", "bold"),
                                (f"  ({doc.ignored})" if doc.ignored else "", "$text-muted"), *_notes(doc))
    added, removed = doc.stat.get("added", 0), doc.stat.get("removed", 0)
    done, total = doc.hunk_count()
    rej, com = doc.pending()
    parts: list[tuple[str, str] | str] = [
        (f"{files} file{'s' if files != 1 else ''} ", "bold"), (f"+{added}", "$wb-diff-added"), " ",
        (f"-{removed}", "$wb-diff-removed"), ("  reviewed ", "dim"),
        (f"{done}/{total}", "$success" if done == total else ""),
    ]
    if rej or com:
        parts += [("  pending: ", "dim"), (f"{rej} rejected, {com} comment{'s' if com != 1 else ''}", "$warning"),
                  (" (S sends · u undoes)", "dim")]
    parts += [("  ", ""), ("split" if split else "unified", "$text-muted"), (" (v)", "dim"), *_notes(doc)]
    return Content.assemble(*parts)


class DiffPanel(Vertical):
    @dataclass
    class Rejected(Message):
        """A hunk was rejected (recorded by the daemon, pending until the review is sent)."""

        panel: DiffPanel
        session_id: str
        what: str

        @property
        def control(self) -> DiffPanel:
            return self.panel

    DEFAULT_CSS = """
    DiffPanel { height: 1fr; background: $background; }
    DiffPanel > .diff-header { height: 1; background: $panel; padding: 0 1; }
    DiffPanel #diff-body { height: 1fr; }
    DiffPanel #diff-side { width: 30%; min-width: 20; max-width: 48; }
    DiffPanel.-narrow #diff-side { display: none; }
    DiffPanel > .diff-keys { height: 1; background: $panel; padding: 0 1; }
    DiffPanel > .diff-error { color: $text-muted; padding: 0 1; display: none; }
    DiffPanel.-error > .diff-error { display: block; }
    """

    def __init__(self, session: Session, host: ReviewHost) -> None:
        super().__init__()
        self.session = session
        self.session_id = str(session["id"])
        self.host = host
        self.header = Static("loading the diff…", classes="diff-header")
        self.error = Static("", classes="diff-error")
        self.files = DiffFileList()
        self.check = CheckPanel()
        self.view = DiffView()
        self.keys_line = Static(Content.assemble((keys_hint(200), "dim")), classes="diff-keys")
        self.result: DiffReply | None = None
        self.doc: DiffDoc | None = None
        self.split = False
        self.opened: set[str] = set()
        self.closed: set[str] = set()
        self._cache: HunkCache = {}
        self.loads = 0  # finished loads, for tests and the first-focus logic
        self.to_first_unreviewed = False  # the attention jump: the cursor on the first hunk to review

    def compose(self) -> Any:
        yield self.header
        yield self.error
        with Horizontal(id="diff-body"):
            with Vertical(id="diff-side"):
                yield self.files
                yield self.check
            yield self.view
        yield self.keys_line

    def on_mount(self) -> None:
        self.check.show(self.session, None)
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        if self.result is not None:
            self.show(self.result)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 70, "-narrow")
        self.keys_line.update(Content.assemble((keys_hint(self.size.width - 2), "dim")))  # its padding: 0 1

    def update_session(self, s: Session) -> None:
        self.session = s
        self.check.show(s, self.doc.check if self.doc and not s.get("check_running") else None,
                        self.result.get("digest") if self.result else None)

    # loading

    @work(exclusive=True, group="diff-load", exit_on_error=False)
    async def load(self) -> None:
        try:
            # The file list and the first screen of hunks first (a small page, quick to
            # prepare), then the first page proper; the daemon keeps the diff, so the
            # second request costs it no new diff.
            result = await self.host.fetch_diff(self.session, max_bytes=QUICK_PAGE_BYTES)
            if result.get("next") is not None:
                self.set_class(False, "-error")
                await self._prepare_and_show(result, highlight=False)
                result = await self.host.fetch_diff(self.session, max_bytes=FIRST_PAGE_BYTES)
        except WorkbenchError as e:
            self.set_class(True, "-error")
            self.error.update(Content(f"diff unavailable: {one_line(str(e), 300)}"))
            self.header.update(Content.assemble(("no diff", "$text-muted")))
            return
        self.set_class(False, "-error")
        await self._show(result)

    def show(self, result: DiffReply) -> None:
        self._show_worker(result)

    @work(exclusive=True, group="diff-load", exit_on_error=False)
    async def _show_worker(self, result: DiffReply) -> None:
        await self._show(result)

    async def _show(self, result: DiffReply) -> None:
        # Parsing and highlighting happen in a thread; a long diff is shown plain first, so the
        # first screen does not wait for the colours.
        if line_count(result) > PLAIN_FIRST_LINES:
            await self._prepare_and_show(result, highlight=False)
        await self._prepare_and_show(result, highlight=True)
        self.loads += 1

    async def _prepare_and_show(self, result: DiffReply, highlight: bool) -> None:
        dark = self.app.current_theme.dark
        opened, closed, split = set(self.opened), set(self.closed), self.split
        doc = await asyncio.to_thread(prepare, result, opened, self._cache, dark, closed, highlight)
        rows = await asyncio.to_thread(layout, doc, split)
        live = {h.id for f in doc.files for h in f.hunks}
        for key in [k for k in self._cache if k[0] not in live]:
            self._cache.pop(key, None)
        self.result, self.doc = result, doc
        self.view.set_rows(doc, rows, split)
        if self.to_first_unreviewed and self.view.first_unreviewed():
            self.to_first_unreviewed = False
        self.files.show(doc.files, doc.ignored)
        self.check.show(self.session, doc.check, result.get("digest"))
        self.header.update(summary_content(doc, split))

    def refresh_summary(self) -> None:
        if self.doc is not None:
            self.header.update(summary_content(self.doc, self.split))
            self.files.show(self.doc.files, self.doc.ignored)
            self.view.review_changed()

    # file list <-> diff cursor

    @on(OptionList.OptionSelected)
    def _file_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.view.jump_to_file(event.option_index)
        self.view.focus()

    @on(DiffView.Moved)
    def _moved(self, event: DiffView.Moved) -> None:
        event.stop()
        self.files.follow(event.file)

    # review keys

    @on(DiffView.Act)
    def _act(self, event: DiffView.Act) -> None:
        event.stop()
        t = event.target
        if event.action == "split":
            self.split = not self.split
            if self.result is not None:
                self.show(self.result)
        elif event.action == "open":
            self.toggle_open(t)
        elif event.action in ("mark", "mark_file"):
            self.mark(t, event.action == "mark_file")
        elif event.action == "reject":
            self.ask_reject(t)
        elif event.action == "revert_file":
            self.ask_revert(t)
        elif event.action == "comment":
            self.ask_comment(t)

    def toggle_open(self, t: Target) -> None:
        row = self.view.current()
        if t.file is None or row is None or self.result is None:
            return
        f = t.file
        if row.kind == "fold" and t.hunk is not None:
            self.opened.add(t.hunk.id)
            if t.hunk.omitted:
                self.load_file(f)
                return
        elif f.collapsed:
            self.opened.add(f.key)
            self.closed.discard(f.key)
            if f.omitted:
                self.load_file(f)
                return
        elif row.kind == "file":
            self.closed.add(f.key)
            self.opened.discard(f.key)
        else:
            return
        self.show(self.result)

    @work(group="diff-file", exit_on_error=False)
    async def load_file(self, f: PFile) -> None:
        """Fetch one file the first page left out, and put it in place."""
        try:
            one = await self.host.fetch_diff(self.session, paths=[f.path])
        except WorkbenchError as e:
            self.host.report_error(e)
            return
        got = {x["path"]: x for x in one["files"]}
        if self.result is None or f.path not in got:
            return
        files = [got.get(x["path"], x) for x in self.result["files"]]
        self.show({**self.result, "files": files})

    @work(group="review", exit_on_error=False)
    async def mark(self, t: Target, whole_file: bool) -> None:
        f, h = t.file, t.hunk
        if f is None:
            return
        if h is not None and not whole_file:
            params = pr.MarkParams(id=self.session_id, hunk=h.id, reviewed=not h.reviewed)
        else:
            params = pr.MarkParams(id=self.session_id, path=f.path, reviewed=f.review_status != "reviewed")
        try:
            await self.host.request(pr.MARK_REVIEWED, params)
        except WorkbenchError as e:
            self.host.report_error(e)
            return
        value = bool(params["reviewed"])
        for hunk in f.hunks:
            if "path" in params or hunk is h:
                hunk.reviewed = value
        if f.hunks:
            done = sum(x.reviewed for x in f.hunks)
            f.review_status = "reviewed" if done == len(f.hunks) else "partial" if done else "unreviewed"
        else:
            f.review_status = "reviewed" if value else "unreviewed"
        if value:
            if "path" in params:
                self.view.action_file(1)
            else:
                self.view.next_hunk_after_mark()
        self.refresh_summary()
        self.load()

    def ask_reject(self, t: Target) -> None:
        f, h = t.file, t.hunk
        if f is None:
            return
        if h is None:
            if not f.hunks:
                self.app.notify(f"{one_line(f.path, 80)} has no hunks: X reverts the whole file", timeout=4)
            else:
                self.app.notify("move to a hunk first (n / p)", timeout=3)
            return

        def done(reason: str | None) -> None:
            if reason is not None and h is not None and f is not None:
                self.do_review(pr.REJECT, pr.RejectParams(id=self.session_id, hunk=h.id, reason=reason),
                               f"rejected a hunk of {one_line(f.path, 60)}", rejected=True)

        self.app.push_screen(LineInputScreen(
            f"Reject {one_line(h.header, 60)} in {one_line(f.path, 60)}: it is reversed in the worktree",
            "why? (optional; an idle agent gets it at once, a busy one with the review)", allow_empty=True,
            hint="Enter rejects · Esc cancels"), done)

    def ask_revert(self, t: Target) -> None:
        f = t.file
        if f is None:
            return

        def done(reason: str | None) -> None:
            if reason is not None and f is not None:
                self.do_review(pr.REVERT_FILE, pr.RevertFileParams(id=self.session_id, path=f.path, reason=reason),
                               f"reverted {one_line(f.path, 60)}")

        self.app.push_screen(LineInputScreen(
            f"Revert {one_line(f.path, 80)} to the base version (every hunk)?",
            "why? (optional; it goes to the agent with the review)", allow_empty=True,
            hint="Enter reverts · Esc cancels · u undoes it later"), done)

    def ask_comment(self, t: Target) -> None:
        f = t.file
        if f is None or t.line is None:
            self.app.notify("move to a hunk or a line to comment on it", timeout=3)
            return
        where = f"{t.line}" if t.end_line in (None, t.line) else f"{t.line}-{t.end_line}"
        params = pr.CommentParams(id=self.session_id, path=f.path, line=t.line, text="")
        if t.end_line is not None and t.end_line != t.line:
            params["end_line"] = t.end_line

        def done(text: str | None) -> None:
            if text:
                self.view.sel_start = None
                self.do_review(pr.COMMENT, {**params, "text": text},
                               f"comment on {one_line(f.path if f else '', 60)}:{where} added")

        self.app.push_screen(LineInputScreen(f"Comment on {one_line(f.path, 80)}:{where}",
                                             "a note for the agent; Enter adds it, Esc cancels"), done)

    @work(group="review", exit_on_error=False)
    async def do_review(self, spec: Method[P, R], params: P, done: str, rejected: bool = False) -> None:
        try:
            await self.host.request(spec, params)
        except WorkbenchError as e:
            self.host.report_error(e)
            return
        if rejected:  # the screen sends it to an idle agent at once (and says so)
            self.post_message(self.Rejected(self, self.session_id, done))
        else:
            self.app.notify(done, timeout=3)
        self.load()
