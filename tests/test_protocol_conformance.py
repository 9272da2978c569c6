"""What the daemon really sends matches what `workbench.protocol` declares: every reply of a
session's life (create, terminal, review, merge, remove) and every pushed event is checked
key by key against its TypedDict, so a handler cannot drift from its declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.protocol_conformance import conforms, result_type
from tests.wb import Wb
from workbench.daemon.client import Client
from workbench.protocol import agent as pa
from workbench.protocol import review as pr
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.events import EVENT_DATA
from workbench.protocol.method import Method


def _ok(c: Client, spec: Method[Any, Any], params: Any) -> Any:
    result = c.request(spec, params)
    why = conforms(result, result_type(spec))
    assert why is None, f"{spec.name}: {why}"
    return result


def test_every_declared_method_has_a_result_type() -> None:
    from workbench.protocol.catalog import METHODS

    for spec in METHODS.values():
        assert result_type(spec) is not None


@pytest.mark.timeout(180)
def test_a_session_life_matches_the_declarations(wb: Wb, repo: Path, isolated_env: Path) -> None:
    (isolated_env / "config" / "workbench" / "config.toml").write_text('[check]\ncommand = "true"\n')
    with Client("conformance") as c, Client("events") as ev:
        ev.request(pt.SUBSCRIBE, pt.SubscribeParams(all=True))
        s = _ok(c, ps.NEW, ps.NewParams(repo=str(repo), agent="shell", sandbox="off", name="shape"))
        sid = s["id"]
        ev.request(pt.SUBSCRIBE, pt.SubscribeParams(ids=[sid], frames=True))
        wait_for(lambda: c.request(ps.GET, ps.IdParams(id=sid))["state"] == "running", 15, what="running")
        for spec, params in [
            (ps.STATUS, ps.NoParams()), (ps.LS, ps.NoParams()), (ps.GET, ps.IdParams(id=sid)),
            (ps.RECENT_REPOS, ps.NoParams()), (ps.PROFILES, ps.ProfilesParams(repo=str(repo))),
            (pt.SCREEN, pt.ScreenParams(id=sid)), (pt.SCREEN, pt.ScreenParams(id=sid, ansi=True)),
            (pt.RESIZE, pt.ResizeParams(id=sid, size="100x30")), (pt.FRAME, ps.IdParams(id=sid)),
            (pt.SCROLLBACK, pt.ScrollbackParams(id=sid, start=0, count=10)),
            (pt.KEYS, pt.KeysParams(id=sid, text="printf 'a\\\\nb\\\\n' > new.txt; echo >> README.md\\r")),
            (pa.SEND, pa.SendParams(id=sid, text="true")),
        ]:
            _ok(c, spec, params)
        wait_for(lambda: c.request(pr.DIFF, pr.DiffParams(id=sid, stat=True))["stat"]["files"] == 2, 15,
                 what="the session's two changes")
        _ok(c, pr.DIFF, pr.DiffParams(id=sid, stat=True))
        _ok(c, pr.DIFF, pr.DiffParams(id=sid, format="unified"))
        diff = _ok(c, pr.DIFF, pr.DiffParams(id=sid))
        hunks = {f["path"]: f["hunks"][0]["id"] for f in diff["files"] if f["hunks"]}
        _ok(c, pr.MARK_REVIEWED, pr.MarkParams(id=sid, hunk=hunks["new.txt"]))
        _ok(c, pr.COMMENT, pr.CommentParams(id=sid, path="new.txt", line=1, text="why a?"))
        _ok(c, pr.UNDO, ps.IdParams(id=sid))
        _ok(c, pr.REJECT, pr.RejectParams(id=sid, hunk=hunks["README.md"], reason="keep it"))
        _ok(c, pr.REVIEW, pr.ReviewParams(id=sid))
        _ok(c, pr.CHECK, ps.IdParams(id=sid))
        _ok(c, ps.EVENTS, ps.EventsParams(id=sid))
        _ok(c, pa.LOG, ps.EventsParams(id=sid))
        _ok(c, pr.MERGE, pr.MergeParams(id=sid, strategy="squash", message="add new.txt"))
        _ok(c, pr.DISCARD, ps.IdParams(id=sid))
        _ok(c, ps.STOP, ps.IdParams(id=sid))
        _ok(c, ps.RESTART, ps.IdParams(id=sid))
        _ok(c, ps.RM, ps.RmParams(id=sid))
        _ok(c, ps.GC, ps.NoParams())
        seen: set[str] = set()
        while (msg := ev.next_event(timeout=0.5)) is not None:
            name = msg["event"]
            seen.add(name)
            why = conforms(msg["data"], EVENT_DATA[name])
            assert why is None, f"event {name}: {why}"
        assert {"session", "log", "frame", "diff", "removed"} <= seen


@pytest.mark.timeout(180)
def test_attempts_and_the_built_in_agent_match_the_declarations(wb: Wb, repo: Path) -> None:
    with Client("conformance") as c:
        demo = _ok(c, ps.DEMO, ps.DemoParams(repo=str(repo)))
        waiting = wait_for(lambda: [s for s in c.request(ps.LS, ps.NoParams()) if s.get("approval_pending")],
                           60, what="a demo session asking for approval")
        _ok(c, ps.LS, ps.NoParams())
        sid = waiting[0]["id"]
        _ok(c, pa.LOG, ps.EventsParams(id=sid))
        _ok(c, pa.DENY, pa.DenyParams(id=sid, reason="not now"))
        _ok(c, pa.INTERRUPT, ps.IdParams(id=sid))
        for s in demo["sessions"]:
            c.request(ps.RM, ps.RmParams(id=s["id"]))
        group = _ok(c, pr.NEW_ATTEMPTS, pr.NewAttemptsParams(repo=str(repo), agent="shell", sandbox="off",
                                                            attempts=2, name="try"))
        first = group["sessions"][0]["id"]
        _ok(c, pr.COMPARE, pr.GroupParams(id=first))
        _ok(c, pr.PICK, ps.IdParams(id=first))
