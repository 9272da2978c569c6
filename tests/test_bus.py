"""The daemon's in-process event bus (daemon/bus.py) and the hub's wire serialisation."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from workbench.core.models import Session, SessionState
from workbench.daemon.bus import Bus, DiffChanged, SessionChanged, SessionRemoved
from workbench.daemon.hub import Hub


def _session() -> Session:
    return Session(id="s1", name="one", repo="/r", branch="b", worktree="/w", base_commit="0" * 40, base_ref="main",
                   agent="sh", command=["sh"])


def test_subscribers_get_their_event_class_in_order() -> None:
    bus = Bus()
    got: list[Any] = []
    bus.subscribe(SessionChanged, lambda e: got.append(("a", e.new_state)))
    bus.subscribe(SessionChanged, lambda e: got.append(("b", e.new_state)))
    bus.subscribe(SessionRemoved, lambda e: got.append(("removed", e.session.id)))
    s = _session()
    bus.publish(SessionChanged(s, SessionState.RUNNING, SessionState.REVIEW))
    assert got == [("a", SessionState.REVIEW), ("b", SessionState.REVIEW)]
    bus.publish(SessionRemoved(s))
    assert got[-1] == ("removed", "s1")


def test_a_failing_subscriber_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    got: list[str] = []

    def boom(_e: SessionRemoved) -> None:
        raise RuntimeError("boom")

    bus.subscribe(SessionRemoved, boom)
    bus.subscribe(SessionRemoved, lambda e: got.append(e.session.id))
    with caplog.at_level(logging.ERROR):
        bus.publish(SessionRemoved(_session()))
    assert got == ["s1"]
    assert "SessionRemoved" in caplog.text


def test_hub_serialises_bus_events_in_the_wire_format(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = Hub()
    sent: list[tuple[str, dict[str, Any], str | None]] = []
    monkeypatch.setattr(hub, "publish", lambda ev, data, sid=None: sent.append((ev, data, sid)))
    bus = Bus()
    hub.follow(bus, lambda s: {"id": s.id, "state": str(s.state)})
    s = _session()
    bus.publish(DiffChanged(s, {"files": 1, "added": 2, "removed": 0}, "d1"))
    bus.publish(SessionRemoved(s))
    assert sent == [
        ("diff", {"session": "s1", "stat": {"files": 1, "added": 2, "removed": 0}, "digest": "d1"}, "s1"),
        ("removed", {"id": "s1"}, None),
    ]
