"""The UI test fakes answer what `workbench.protocol` declares: a fake that drifts from the
daemon's shapes would let a UI test pass against replies the daemon never sends. Every method
the fakes answer, every pushed frame and every canned session is checked key by key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.protocol_conformance import conforms, result_type
from tests.ui_fakes import SCREENS, FakeLink, frame, sample_sessions, session
from tests.ui_review_fakes import REVIEW_METHODS, FakeReview, hunks_of, ten_files
from workbench.protocol import agent as pa
from workbench.protocol import review as pr
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.events import LogEvent
from workbench.protocol.method import Method
from workbench.ui.messages import FrameEvent


def _check(value: Any, tp: Any, what: str) -> None:
    why = conforms(value, tp)
    assert why is None, f"{what}: {why}"


def _link() -> tuple[FakeLink, list[Any]]:
    posted: list[Any] = []
    link = FakeLink(posted.append, sample_sessions(), SCREENS)
    link.unavailable.clear()  # the test answers every method the fake knows
    return link, posted


async def _ok(link: FakeLink, spec: Method[Any, Any], params: Any) -> Any:
    reply = await link.request(spec, params)
    _check(reply, result_type(spec), spec.name)
    return reply


def test_canned_sessions_frames_and_log_entries_conform() -> None:
    for s in [*sample_sessions(), session("x", "plain")]:
        _check(s, ps.SessionInfo, f"session {s['id']}")
    for sid, lines in SCREENS.items():
        _check(frame(sid, lines, cursor=(2, 1)), pt.Frame, f"frame {sid}")
    link, posted = _link()
    asyncio.run(link.set_frame_ids(set(SCREENS)))
    frames = [m.data for m in posted if isinstance(m, FrameEvent)]
    assert len(frames) == len(SCREENS)
    for f in frames:
        _check(f, pt.Frame, f"pushed frame {f['session']}")
    for entry in asyncio.run(link.request(ps.EVENTS, ps.EventsParams(id="a1"))):
        _check({**entry, "session": "a1"}, LogEvent, "the log event of an entry")


def test_every_session_and_terminal_reply_conforms() -> None:
    async def drive() -> set[str]:
        link, _ = _link()
        sequence: list[tuple[Method[Any, Any], Any]] = [
            (ps.STATUS, ps.NoParams()), (ps.LS, ps.NoParams()), (ps.RECENT_REPOS, ps.NoParams()),
            (ps.EVENTS, ps.EventsParams(id="a1")), (pa.LOG, ps.EventsParams(id="a1", after=0)),
            (ps.NEW, ps.NewParams(repo="/work/api", name="add-tests", prompt="add tests", cols=80, rows=24)),
            (ps.GET, ps.IdParams(id="b2")), (ps.STOP, ps.IdParams(id="b2")), (ps.RESTART, ps.IdParams(id="b2")),
            (ps.RM, ps.RmParams(id="c3")),
            (pt.KEYS, pt.KeysParams(id="b2", data="go on\r")), (pt.RESIZE, pt.ResizeParams(id="b2", size="100x30")),
            (pt.SCROLLBACK, pt.ScrollbackParams(id="b2", start=40, count=20)),
            (pt.SUBSCRIBE, pt.SubscribeParams(ids=["b2"], frames=True)),
            (pt.UNSUBSCRIBE, pt.UnsubscribeParams(ids=["b2"])),
            (pa.SEND, pa.SendParams(id="a1", text="hi")), (pa.APPROVE, pa.ApproveParams(id="a1", always=True)),
            (pa.DENY, pa.DenyParams(id="a1")), (pa.INTERRUPT, ps.IdParams(id="a1")),
            (pr.COMPARE, pr.GroupParams(id="a1")),
        ]
        for spec, params in sequence:
            await _ok(link, spec, params)
        link.compare = pr.CompareResult(group="g1", sessions=[
            pr.AttemptEntry(id="t1", name="task-1", state="review", check="failed"),
            pr.AttemptEntry(id="t2", name="task-2", state="review", check="passed")])
        await _ok(link, pr.PICK, ps.IdParams(id="t2"))
        return {name for name, _ in link.calls}

    called = asyncio.run(drive())
    assert called >= {"status", "ls", "events", "recent_repos", "scrollback", "compare", "pick", "new", "rm",
                      "stop", "restart", "keys", "resize", "send", "approve", "deny", "interrupt", "log"}


def test_a_review_through_the_fake_conforms() -> None:
    async def drive() -> set[str]:
        link, _ = _link()
        diff = await _ok(link, pr.DIFF, pr.DiffParams(id="d4"))
        hunks = {f["path"]: [h["id"] for h in f["hunks"]] for f in diff["files"]}
        await _ok(link, pr.DIFF, pr.DiffParams(id="d4", paths=["src/mod0.py"]))
        await _ok(link, pr.MARK_REVIEWED, pr.MarkParams(id="d4", hunk=hunks["src/mod1.py"][0]))
        await _ok(link, pr.MARK_REVIEWED, pr.MarkParams(id="d4", path="logo.png"))
        await _ok(link, pr.MARK_REVIEWED, pr.MarkParams(id="d4", path="src/mod2.py", reviewed=False))
        await _ok(link, pr.COMMENT, pr.CommentParams(id="d4", path="src/mod3.py", line=6, end_line=7, text="why?"))
        await _ok(link, pr.REJECT, pr.RejectParams(id="d4", hunk=hunks["src/mod0.py"][1], reason="keep it"))
        await _ok(link, pr.REVERT_FILE, pr.RevertFileParams(id="d4", path="docs/new.md", reason="not wanted"))
        await _ok(link, pr.DIFF, pr.DiffParams(id="d4"))  # with rejections and a comment in its review
        await _ok(link, pr.UNDO, ps.IdParams(id="d4"))
        await _ok(link, pr.REVIEW, pr.ReviewParams(id="d4"))
        await _ok(link, pr.REVIEW, pr.ReviewParams(id="d4", send=True))
        await _ok(link, pr.CHECK, ps.IdParams(id="d4"))
        await _ok(link, pr.SEND_CHECK, ps.IdParams(id="d4"))
        await _ok(link, pr.MERGE, pr.MergeParams(id="d4", strategy="squash", message="land it"))
        await _ok(link, pr.DISCARD, ps.IdParams(id="d4"))
        await _ok(link, pr.DIFF, pr.DiffParams(id="d4"))  # nothing left
        return {name for name, _ in link.calls}

    assert asyncio.run(drive()) == REVIEW_METHODS


def test_hunks_conform_and_unknown_methods_are_refused() -> None:
    for path, (old, new) in ten_files().items():
        for h in hunks_of(path, old, new):
            _check(h, pr.HunkInfo, f"hunk of {path}")
    with pytest.raises(KeyError):
        FakeReview().handle("no_such_method", {})
    link, _ = _link()
    with pytest.raises(KeyError):
        asyncio.run(link.call("no_such_method"))
