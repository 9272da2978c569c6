"""Terminal escape injection: the second class of the endpoint audit (docs/security.md).

Text that comes from a model, a PTY (titles, notifications), a file name, a commit message,
a check's output or a repo path must reach the user's terminal inert: no OSC (title, OSC 52
clipboard, OSC 8), no CSI (cursor moves, clears), no C1 controls, no BEL/CR. The CLI's
human output, its error lines, the daemon log and the Textual UI are checked; JSON output is
safe by construction (json.dumps escapes every control character) and checked too.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import git, make_repo
from tests.hardening_support import builtin_config, wait_session
from tests.helpers import wait_for
from tests.wb import Wb
from workbench import paths

# A title (OSC 0), a clipboard write (OSC 52), a hyperlink (OSC 8), a clear + home (CSI), an
# 8-bit CSI (C1, as UTF-8), a bell and a carriage return that would overwrite the line.
EVIL = "A\x1b]0;PWNED\x07B\x1b]52;c;UFdORUQ=\x07C\x1b]8;;http://x\x1b\\D\x1b[2J\x1b[HE\u009b31mF\x07G\rH"
# The same for a file name (no '/', kept short).
EVIL_NAME = "n\x1b]0;PWNED\x07\x1b[2J\u009b31m\x07.txt"
_BAD = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def assert_inert(text: str, what: str, *, allow_sgr: bool = False) -> None:
    if allow_sgr:
        text = _SGR.sub("", text)
    m = _BAD.search(text)
    if m is not None:
        around = text[max(0, m.start() - 40) : m.end() + 40]
        raise AssertionError(f"{what}: control character {m.group()!r} at {m.start()}: {around!r}")


def run(wb: Wb, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = wb.run(*args, check=check)
    assert_inert(out.stdout, f"stdout of workbench {' '.join(args[:2])}")
    assert_inert(out.stderr, f"stderr of workbench {' '.join(args[:2])}")
    return out


def run_tty(wb: Wb, *args: str) -> str:
    """The CLI with its stdout on a terminal (a pty), as a user would see it."""
    import os
    import pty
    import sys

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "workbench", *args], stdout=slave, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=wb.env)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0, err
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")  # the pty's ONLCR
    assert_inert(text, f"tty stdout of workbench {' '.join(args[:2])}")
    return text


def assert_json_inert(wb: Wb, *args: str) -> Any:
    out = wb.run(*args, "--json")
    assert "\x1b" not in out.stdout and not _BAD.search(out.stdout.replace("\n", ""))
    return json.loads(out.stdout)


def daemon_log_inert() -> None:
    for f in (paths.log_file(), paths.state_dir() / "daemon.out"):
        if f.exists():
            assert_inert(f.read_text(errors="replace"), f"daemon log {f.name}")


# --------------------------------------------------------------------------- repo path, names, errors


def test_repo_path_names_and_errors_are_inert(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / f"repo{EVIL_NAME}")
    sid = run(wb, "new", "--repo", str(repo), "--sandbox", "off", "--name", "evil-repo").stdout.strip()
    wb.wait_state(sid, "running")
    out = run(wb, "ls").stdout
    assert "evil-repo" in out  # the (cut) path is shown, as inert text
    assert assert_json_inert(wb, "ls")[0]["repo"] == str(repo.resolve())
    run(wb, "events", sid)
    assert_json_inert(wb, "events", sid)
    run(wb, "daemon", "status")
    # error lines: an unknown id, a bad name, a missing repo, all carrying escapes
    for args in (("stop", EVIL), ("rm", EVIL), ("screen", EVIL), ("new", "--repo", str(repo), "--name", EVIL),
                 ("new", "--repo", f"/nonexistent/{EVIL_NAME}"), ("keys", sid, "\\q" + EVIL), ("resize", sid, EVIL),
                 ("new", "--repo", str(repo), "--base", EVIL), ("new", "--repo", str(repo), "--agent", EVIL)):
        res = run(wb, *args, check=False)
        assert res.returncode in (1, 2) and res.stderr.startswith("error:"), (args, res.stderr)


# --------------------------------------------------------------------------- PTY: titles, notifications


def test_pty_titles_notifications_and_screen_are_inert(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--name", "osc")
    wb.wait_state(sid, "running")
    # A title with a C1 CSI inside (the OSC itself ends at BEL), OSC 9 and OSC 777 notifications,
    # a clipboard write, a bell, then text with 8-bit controls and a cursor jump.
    # (`keys` decodes C escapes itself, so printf's backslashes are doubled.)
    script = (
        r"printf '\\033]0;T1\\302\\2332J-title\\007\\033]9;N1\\302\\233H-note\\007"
        r"\\033]777;notify;S;B\\302\\2331m\\007\\033]52;c;UFdORUQ=\\007\\007"
        r"plain\\302\\233Hafter\\033[999;999Hend\\n'; echo done-$((2+3))\r"
    )
    wb.run("keys", sid, script)
    wb.wait_screen(sid, "done-5")
    wait_for(lambda: any(e["kind"] == "title" for e in wb.json("events", sid)), 10, what="title event")
    run(wb, "screen", sid)
    ansi = wb.run("screen", sid, "--ansi").stdout
    assert_inert(ansi, "screen --ansi", allow_sgr=True)
    run(wb, "events", sid)
    evs = assert_json_inert(wb, "events", sid)
    assert any("T1" in json.dumps(e["data"]) for e in evs if e["kind"] == "title")
    run(wb, "ls")
    run(wb, "why", sid, check=False)


# --------------------------------------------------------------------------- file names, contents, commits


def test_file_names_and_contents_in_review_output_are_inert(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--name", "files")
    s = wb.wait_state(sid, "running")
    wt = Path(s["worktree"])
    (wt / EVIL_NAME).write_text(f"first {EVIL}\nsecond\n")
    (wt / "README.md").write_text(f"# demo\n{EVIL}\n")
    wait_for(lambda: wb.session(sid).get("files_changed") == 2, 15, what="the diff stat")
    # On a terminal the diff is made inert; into a pipe it is left as data (see docs/security.md).
    tty = run_tty(wb, "diff", sid)
    assert "PWNED" in tty and "\x1b" not in tty
    assert "\x1b" not in wb.run("diff", sid, "--stat").stdout
    data = assert_json_inert(wb, "diff", sid)
    names = {f["path"] for f in data["files"]}
    assert EVIL_NAME in names  # the real name travels in JSON, escaped
    hunk = next(f["hunks"][0]["id"] for f in data["files"] if f["path"] == "README.md")
    run(wb, "comment", sid, f"{EVIL_NAME}:1", f"why {EVIL}")
    run(wb, "comment", sid, "README.md:2", EVIL)
    run(wb, "review", sid)
    run(wb, "reject", sid, hunk, "--reason", EVIL)
    run(wb, "undo", sid)
    run(wb, "revert", sid, EVIL_NAME, "--reason", EVIL)
    run(wb, "undo", sid)
    run(wb, "mark", sid, EVIL_NAME)
    run(wb, "events", sid)
    res = run(wb, "merge", sid, "--message", f"merge {EVIL}", check=False)
    assert res.returncode == 0, res.stderr
    assert git(repo, "log", "-1", "--format=%s", "main").startswith("merge A")  # the message is kept as given
    run(wb, "ls")


def test_check_output_is_inert(wb: Wb, repo: Path) -> None:
    printf = r"printf 'fail \\033]0;PWNED\\007 \\033]52;c;UFdORUQ=\\007\\n'; exit 3"
    (repo / ".workbench.toml").write_text(f'[check]\ncommand = ["sh", "-c", "{printf}"]\n')
    git(repo, "add", ".workbench.toml")
    git(repo, "commit", "-qm", "check")
    wb.run("trust", str(repo))  # its check command runs without a sandbox here
    sid = wb.new(repo, "--sandbox", "off", "--name", "chk")
    wb.wait_state(sid, "running")
    res = wb.run("check", sid, check=False)
    assert res.returncode == 1 and "fail" in res.stdout and "PWNED" in res.stdout
    assert_inert(res.stdout, "workbench check")  # core/check.py strips the tail at the source
    assert "\x1b" not in json.dumps(wb.session(sid).get("check_tail", ""))


# --------------------------------------------------------------------------- the built-in agent


def test_model_text_tool_calls_and_approvals_are_inert(wb: Wb, repo: Path) -> None:
    from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

    cmd = json.dumps({"command": ["sh", "-c", f"printf '%s' '{EVIL}'"]})
    scripts = [Script("", [Turn(text=f"Looking {EVIL}", tool_calls=[ScriptedToolCall("shell", cmd)]),
                           Turn(text=f"Done {EVIL}")])]
    with FakeOpenAI(scripts) as fake:
        builtin_config(fake.base_url)
        sid = wb.new(repo, "--agent", "builtin", "--sandbox", "off", "--name", "model", "--prompt", f"go {EVIL}")
        wait_session(sid, lambda s: s["state"] == "waiting" and s.get("approval_pending"), 30,
                     what="the approval request")
        run(wb, "ls")
        run(wb, "log", sid)
        run(wb, "log", sid, "--full")
        run(wb, "approve", sid)
        wait_session(sid, lambda s: s["state"] in ("review", "running", "waiting") and not s.get("turn_active")
                     and not s.get("approval_pending"), 30,
                     what="the end of the turn")
        wait_for(lambda: "Done" in wb.run("log", sid).stdout, 15, what="the final message")
        run(wb, "log", sid, "--full")
        run(wb, "send", sid, EVIL)
        run(wb, "deny", sid, "--reason", EVIL, check=False)
        entries = assert_json_inert(wb, "log", sid)
        assert any(EVIL in str(e["data"].get("text")) for e in entries if e["kind"] == "assistant")
        run(wb, "events", sid)
        wb.run("stop", sid)


def test_diff_stat_file_names_are_inert(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--name", "stat")
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    (wt / EVIL_NAME).write_text("x\n")
    wait_for(lambda: wb.session(sid).get("files_changed") == 1, 15, what="the diff stat")
    run(wb, "diff", sid, "--stat")


def test_daemon_log_is_inert(wb: Wb, repo: Path) -> None:
    from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

    cmd = json.dumps({"command": ["echo", EVIL]})
    with FakeOpenAI([Script("", [Turn(text="x", tool_calls=[ScriptedToolCall("shell", cmd)])])]) as fake:
        builtin_config(fake.base_url)
        sid = wb.new(repo, "--agent", "builtin", "--sandbox", "off", "--name", "logged", "--prompt", "go")
        wait_session(sid, lambda s: s["state"] == "waiting", 30, what="the approval request")
        wb.run("stop", sid)
    assert paths.log_file().exists()
    daemon_log_inert()


def test_notify_detail_is_inert(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--name", "hooked", "--agent", "bash")
    wb.wait_state(sid, "running")
    res = run(wb, "notify", sid, "waiting", EVIL, check=False)
    if res.returncode == 0:
        run(wb, "why", sid, check=False)
    run(wb, "events", sid)
    run(wb, "ls")


# --------------------------------------------------------------------------- the Textual UI


_PAYLOAD_MARKERS = ("\x1b]0;PWNED", "]52;c;UFdORUQ", "\x1b[2J\x1b[HE", "\u009b", "\x1b]8;;http://x")


def _rendered(app: Any) -> str:
    """Exactly what Textual would write to the terminal for the whole screen."""
    update = app.screen._compositor.render_update(full=True)
    return str(update.render_segments(app.console))


def test_ui_shows_hostile_session_data_inert() -> None:
    """Names, reasons, titles, repo paths, approval texts, check tails and transcript entries
    with escapes: the frames the UI writes carry none of them (Textual strips only BEL/BS/CR)."""
    from tests.ui_fakes import HarnessApp, frame, session
    from workbench.ui.messages import DaemonEvent, FrameEvent

    pending = {"call_id": "c1", "kind": "patch", "describe": f"apply_patch {EVIL}",
               "patch": f"*** Begin Patch\n*** Add File: {EVIL_NAME}\n+{EVIL}\n*** End Patch",
               "requested_at": time.time()}
    sessions = [
        session("e1", f"ev{EVIL}", "waiting", repo=f"/work/r{EVIL}", reason=f"approval: {EVIL}",
                agent="builtin", approval_pending=pending, check_tail=EVIL, model=EVIL, branch=f"wb/{EVIL}"),
        session("e2", "term", "error", reason=f"crashed {EVIL}", repo=f"/work/r{EVIL}"),
    ]

    async def main() -> str:
        app = HarnessApp(sessions=sessions, screens={"e2": ["ok"]})
        app.link.unavailable.discard("log")  # type: ignore[attr-defined]
        real_call = app.link.call

        async def call(method: str, **params: Any) -> Any:
            if method == "log":
                return [{"seq": 1, "ts": time.time(), "kind": "assistant", "data": {"text": EVIL}},
                        {"seq": 2, "ts": time.time(), "kind": "tool_call",
                         "data": {"call_id": "c1", "name": "shell", "describe": EVIL}},
                        {"seq": 3, "ts": time.time(), "kind": "tool_output",
                         "data": {"call_id": "c1", "output": EVIL, "is_error": True}},
                        {"seq": 4, "ts": time.time(), "kind": "error", "data": {"message": EVIL}}]
            return await real_call(method, **params)

        app.link.call = call  # type: ignore[method-assign]
        out = ""
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            f = frame("e2", ["ok"])
            f["title"] = f"T{EVIL}"
            app.post_message(FrameEvent(f))
            app.post_message(DaemonEvent("delta", {"session": "e1", "text": EVIL}))
            app.post_message(DaemonEvent("log", {"session": "e1", "seq": 5, "ts": time.time(), "kind": "assistant",
                                                 "data": {"text": EVIL}}))
            await pilot.pause(0.2)
            out += _rendered(app)
            for key in ("2", "3", "tab", "2"):  # transcript / diff views, the other pane
                await pilot.press(key)
                await pilot.pause(0.2)
                out += _rendered(app)
            notes = " ".join(m for _, m in app.notes)
        return out + notes

    out = asyncio.run(main())
    # the hostile texts were drawn, filtered: what is left of EVIL ends in "31mFGH"
    assert out.count("31mFGH") >= 3, out.count("31mFGH")
    for marker in _PAYLOAD_MARKERS:
        assert marker not in out, f"the UI wrote {marker!r} to the terminal"
