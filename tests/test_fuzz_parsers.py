"""Fuzzing (issue 9, item 3) of the patch and diff parsers where they meet the daemon: real
git output for random file names and contents, hostile sizes, and a hostile patch applied by
the built-in agent while the daemon must keep answering. (Random-text fuzzing of the parsers
alone lives next to their unit tests: tests/test_patch.py, tests/test_diff.py.)"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_repo
from tests.hardening_support import builtin_config, session
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.agent.patch import PatchError, apply_patch, parse_patch
from workbench.core.diff_parse import parse_unified
from workbench.core.worktree_diff import compute_diff
from workbench.errors import UsageError

# --------------------------------------------------------------------------- the diff parser on git's output

_NAME_CHARS = st.characters(codec="utf-8", blacklist_characters="/\x00")
_NAMES = st.text(_NAME_CHARS, min_size=1, max_size=12).filter(lambda n: n not in (".", "..", ".git"))
_CONTENT = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "\n", "\r\n", "no newline", "\x1b]0;t\x07\n", "a\n" * 50, "\\ No newline at end of file\n",
                     "diff --git a/x b/x\n", "@@ -1 +1 @@\n", "--- a/x\n+++ b/x\n"]),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(_NAMES, _CONTENT, min_size=1, max_size=4), touch_base=st.booleans())
def test_diff_of_random_names_and_contents_parses_and_round_trips(files: dict[str, str], touch_base: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        repo = make_repo(Path(d) / "r", {"base.txt": "one\ntwo\n"})
        base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        for name, text in files.items():
            (repo / name).write_bytes(text.encode("utf-8", "surrogateescape"))
        if touch_base:
            (repo / "base.txt").write_text("one\nTWO\n")
        diff = compute_diff(repo, base)
        paths = {f.path for f in diff.files}
        assert paths == set(files) | ({"base.txt"} if touch_base else set()), (paths, set(files))
        # The rendered diff parses back to the same hunks.
        again = parse_unified(diff.unified())
        assert [[h.id for h in f.hunks] for f in again if f.hunks] == [[h.id for h in f.hunks] for f in diff.files
                                                                       if f.hunks]


def test_diff_parser_time_is_bounded_on_huge_input() -> None:
    # Bounded by pytest-timeout, not by a wall-clock assert (timing belongs to benchmarks).
    text = "diff --git a/x b/x\n--- a/x\n+++ b/x\n" + "@@ -1 +1 @@\n-a\n+b\n" * 50_000
    try:
        parse_unified(text)
    except UsageError:
        pass
    for junk in ("@@ -1,999999999 +1,999999999 @@\n", "diff --git " + "a" * 200_000 + "\n", "\\\n" * 100_000):
        try:
            parse_unified("diff --git a/x b/x\n" + junk)
        except UsageError as e:
            assert str(e)


# --------------------------------------------------------------------------- the patch parser / applier, hostile sizes


def test_patch_parser_time_is_bounded_on_huge_input() -> None:
    # Bounded by pytest-timeout, not by a wall-clock assert (timing belongs to benchmarks).
    for text in (
        "*** Begin Patch\n" + "*** Update File: a\n@@\n" * 20_000 + "*** End Patch",
        "*** Begin Patch\n*** Add File: a\n" + "+x\n" * 200_000 + "*** End Patch",
        "*** Begin Patch\n*** Update File: a\n" + "@@ ctx\n-x\n+y\n" * 50_000 + "*** End Patch",
        "*** Begin Patch\n" * 100_000,
    ):
        try:
            parse_patch(text)
        except PatchError as e:
            assert str(e)


def _hostile_hunk(n_ctx: int) -> str:
    return ("*** Begin Patch\n*** Update File: big.txt\n@@\n" + "".join(f" nomatch {i}\n" for i in range(n_ctx))
            + "-gone\n+new\n*** End Patch\n")


def test_a_non_matching_hunk_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("".join(f"line {i}\n" for i in range(6000)))
    with pytest.raises(PatchError, match="could not find"):
        apply_patch(_hostile_hunk(200), tmp_path)


@pytest.mark.slow
def test_daemon_answers_while_a_hostile_patch_is_applied(wb: Wb, tmp_path: Path) -> None:
    """The built-in agent applies a patch that makes the parser/applier work hard: the daemon
    keeps answering other clients quickly, and the session reports the failed patch."""
    from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

    repo = make_repo(tmp_path / "big", {"big.txt": "".join(f"line {i}\n" for i in range(8000))})
    call = ScriptedToolCall("apply_patch", json.dumps({"input": _hostile_hunk(200)}))
    with FakeOpenAI([Script("", [Turn(text="patching", tool_calls=[call]), Turn(text="gave up")])]) as fake:
        builtin_config(fake.base_url)
        sid = wb.new(repo, "--agent", "builtin", "--sandbox", "off", "--approval", "full-auto", "--prompt", "go")
        answered = 0
        deadline = time.monotonic() + 90
        from workbench.daemon.client import Client

        with Client("probe") as c:
            while time.monotonic() < deadline:
                c.call("status")
                answered += 1
                outputs = [e for e in c.call("log", id=sid) if e["kind"] == "tool_output"]
                if outputs:
                    break
                time.sleep(0.05)
        assert outputs and outputs[0]["data"]["is_error"] and "could not find" in outputs[0]["data"]["output"]
        assert answered >= 1  # the daemon kept answering; how fast is for benchmarks/
        wait_for(lambda: session(sid).get("turn_active") is False, 30, what="the turn to end")
        assert (Path(session(sid)["worktree"]) / "big.txt").read_text().startswith("line 0\n")
