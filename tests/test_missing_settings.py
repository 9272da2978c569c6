"""Missing configuration says what to do, at once, instead of a session retrying a request
that cannot succeed."""

from __future__ import annotations

from pathlib import Path

from tests.wb import Wb

OFF = ("--sandbox", "off")


def test_builtin_agent_without_a_key_or_endpoint_is_refused_with_the_fix(wb: Wb, repo: Path) -> None:
    # No OPENAI_API_KEY, no OPENAI_BASE_URL (conftest): the public API can only refuse.
    out = wb.run("new", "--repo", str(repo), "--agent", "builtin", "--prompt", "hi", *OFF, check=False)
    assert out.returncode != 0
    assert "no API key" in out.stderr and "$OPENAI_API_KEY" in out.stderr
    assert "--base-url" in out.stderr  # the other way out: a local server
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) <= 3
    assert wb.json("ls") == []  # nothing half-made


def test_a_local_endpoint_needs_no_key(wb: Wb, repo: Path) -> None:
    # Local servers ignore the key: --base-url alone is enough to create the session.
    sid = wb.new(repo, "--agent", "builtin", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", *OFF)
    assert wb.session(sid)["agent"] == "builtin"
