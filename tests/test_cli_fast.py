"""The CLI's fast path (`workbench.cli_fast`): the same bytes and exit codes as the click CLI
for every command it takes, and nothing heavy imported on the way."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wb import Wb
from workbench import cli_diff, cli_fast, cli_full
from workbench.protocol import agent as pa
from workbench.protocol import hosts as ph
from workbench.protocol import review as rv
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt

OFF = ("--sandbox", "off")
FULL = "from workbench.cli_full import main; main()"
HEAVY = ("click", "asyncio", "platformdirs", "textual", "typing", "pathlib", "subprocess")


def full(wb: Wb, *args: str) -> subprocess.CompletedProcess[str]:
    """The click CLI alone, as `workbench` ran it before the fast path."""
    return subprocess.run([sys.executable, "-c", FULL, *args], capture_output=True, text=True,
                          env=wb.env, timeout=60, stdin=subprocess.DEVNULL)


def outcome(p: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return p.returncode, p.stdout, p.stderr


def same(wb: Wb, *args: str, mask: str | None = None) -> tuple[int, str, str]:
    """Run `args` on the fast path and the click CLI: the same exit code, stdout and stderr.
    `mask` (a regex) blanks what changes between two calls (an uptime)."""

    def norm(p: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
        code, out, err = outcome(p)
        return (code, re.sub(mask, "#", out), re.sub(mask, "#", err)) if mask else (code, out, err)

    before = norm(full(wb, *args))
    fast = norm(wb.run(*args, check=False))
    # An age column may tick between the two runs: then the fast one matches a later run
    # (on a loaded machine a click run can take over a second: the age ticks during it).
    later = [norm(full(wb, *args)) for _ in range(1 if fast == before else 2)]
    assert fast in (before, *later), (args, fast, before, later)
    return fast


def test_specs_name_the_protocol_methods() -> None:
    pairs = [(cli_fast.LS, ps.LS), (cli_fast.STATUS, ps.STATUS), (cli_fast.GET, ps.GET),
             (cli_fast.KEYS, pt.KEYS), (cli_fast.SCREEN, pt.SCREEN), (cli_fast.SUBSCRIBE, pt.SUBSCRIBE),
             (cli_fast.SEND, pa.SEND), (cli_fast.APPROVE, pa.APPROVE), (cli_fast.DENY, pa.DENY),
             (cli_fast.LOG, pa.LOG), (cli_diff.DIFF, rv.DIFF), (cli_fast.HOSTS, ph.HOSTS)]
    assert [a.name for a, _ in pairs] == [b.name for _, b in pairs]


def test_daemon_status_counts_sessions_by_state_in_words() -> None:
    """It printed the count's Python dict: `sessions 10 {'review': 4, 'waiting': 2}`."""
    from workbench.cli_render import status_lines

    st = {"pid": 1, "version": "0", "socket": "/s", "uptime_s": 1.0, "log": "/l", "sandbox": {"ok": True},
          "sessions": 10, "states": {"waiting": 2, "review": 4, "error": 2, "stopped": 2, "running": 0}}
    lines = status_lines(st)  # type: ignore[arg-type]
    assert "sessions 10 (4 review, 2 error, 2 stopped, 2 waiting)" in lines
    assert "sessions 0" in status_lines({**st, "sessions": 0, "states": {}})  # type: ignore[arg-type]


def test_fast_path_imports_nothing_heavy(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--agent", "shell", *OFF)
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))))\n"
        "from workbench.cli import main\n"
        f"for args in (['ls'], ['screen', {sid!r}], ['daemon', 'status'], ['log', {sid!r}], ['diff', {sid!r}]):\n"
        "    main(args)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, env=wb.env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "[]"
    # `keys` and `screen` (what a script polls with) skip json, socket and re too: with enum,
    # they were a third of a call's CPU.
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print(sorted(set(sys.modules) & set(sys.argv[1:]))))\n"
        "from workbench.cli import main\n"
        f"main(['keys', {sid!r}, 'x'])\n"
        f"main(['screen', {sid!r}])\n"
    )
    p = subprocess.run([sys.executable, "-c", code, "json", "socket", "re", "enum"], capture_output=True, text=True,
                       env=wb.env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "[]"


def test_every_fast_command_prints_what_click_prints(wb: Wb, repo: Path) -> None:
    same(wb, "ls")  # no sessions yet
    sid = wb.new(repo, "--agent", "shell", "--name", "fast", *OFF)
    wb.wait_state(sid, "running")
    assert same(wb, "keys", sid, r"printf '\\033[31mred\\033[0m\\n'\r") == (0, "", "")
    wb.wait_screen(sid, "\nred")
    assert same(wb, "send", sid, "echo", "sent-text")[1] == f"{sid} sent\n"
    wb.wait_screen(sid, "\nsent-text")
    for args in (["ls"], ["ls", "--json"], ["screen", sid], ["screen", "--ansi", sid], ["screen", sid, "--ansi"],
                 ["log", sid], ["log", sid, "--json"], ["log", "--full", sid], ["keys", sid, "--", "-x", ""],
                 ["approve", sid], ["approve", sid, "--always"], ["deny", sid], ["deny", sid, "--reason", "no"]):
        # The AGE column ticks more than once between runs on a loaded machine: blanked.
        same(wb, *args, mask=r"  \d+[smhd]  " if args == ["ls"] else None)
    assert "31mred\x1b[" in same(wb, "screen", "--ansi", sid)[1]
    assert same(wb, "approve", sid)[0] == 2  # no approval pending: a one-line error
    same(wb, "daemon", "status", mask=r"uptime.*")
    same(wb, "daemon", "status", "--json", mask=r'"(uptime_s|loop_lag_ms|clients)": [0-9.]+')
    # errors: an unknown session from the daemon, and usage errors click reports
    assert same(wb, "screen", "nope")[0] == 2
    for args in (["screen"], ["keys", sid], ["ls", "--bogus"], ["deny", sid, "--reason"], ["log", sid, "-x"],
                 ["ls", "--json=1"], ["screen", sid, "extra"], ["status"], ["daemon", "status", "x"]):
        assert same(wb, *args)[0] == 2, args
    assert "Usage:" in same(wb, "screen", "--help")[1]


def test_diff_prints_what_click_prints(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--agent", "shell", *OFF)
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    (wt / "README.md").write_text("# demo\nchanged \x1b[31mred\x1b[0m\n")
    (wt / "new.txt").write_text("".join(f"line {i}\n" for i in range(50)))
    (wt / "src" / "app.py").unlink()
    out = same(wb, "diff", sid)[1]
    assert "new.txt" in out and "\x1b" not in out  # not a terminal: escapes stripped, as click does
    assert "3 files changed" in same(wb, "diff", sid, "--stat")[1]
    for args in (["diff", sid, "--json"], ["diff", "--stat", "--json", sid], ["diff", "nope"]):
        same(wb, *args)


def test_fast_commands_start_the_daemon_but_status_does_not(wb: Wb) -> None:
    assert wb.daemon_pid() is None
    res = wb.run("ls")
    assert res.stdout == "no sessions; create one with `workbench new --repo PATH`\n"
    assert wb.daemon_pid() is not None
    wb.stop()
    # Asking whether a daemon runs never starts one (it did before): "not running", exit 3.
    for args in (["daemon", "status"], ["daemon", "status", "--json"]):
        res = wb.run(*args, check=False)
        assert res.returncode == 3 and res.stdout == ""
        assert res.stderr.startswith("error: the daemon is not running")
        assert wb.daemon_pid() is None


def test_help_and_other_commands_reach_click(wb: Wb) -> None:
    assert cli_fast.parse(["ls", "--help"]) is None
    assert cli_fast.parse(["--version"]) is None
    assert cli_fast.parse(["gc"]) is None
    assert wb.run("--version").stdout == full(wb, "--version").stdout


# --- the parse agrees with click's ---------------------------------------------------------

_TOKENS = ["ID", "two words", "", "-", "--", "-x", "--json", "--json=1", "--ansi", "--always", "--reason",
           "--reason=r", "--follow", "-f", "--full", "--stat", "-h", "--help", "--bogus"]
_COMMANDS = ["ls", "screen", "keys", "send", "approve", "deny", "log", "diff", "daemon status"]


def click_params(argv: list[str]) -> dict[str, object] | None:
    """What click would call the command with, or None if it refuses (or prints help)."""
    group: click.Group = cli_full.cli
    name, *rest = argv
    if name == "daemon":
        sub = group.commands["daemon"]
        assert isinstance(sub, click.Group)
        group, name, rest = sub, rest[0], rest[1:]
    cmd = group.commands[name]
    try:
        ctx = cmd.make_context(name, list(rest), resilient_parsing=False)
    except (click.exceptions.Exit, click.ClickException):
        return None
    return {k: " ".join(v) if isinstance(v, tuple) else v for k, v in ctx.params.items()}


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_COMMANDS), st.lists(st.sampled_from(_TOKENS), max_size=6))
def test_parse_takes_only_what_click_takes_and_reads_it_the_same(command: str, tokens: list[str]) -> None:
    argv = [*command.split(), *tokens]
    call = cli_fast.parse(argv)
    if call is None:
        return  # click handles it, whatever it is
    fn, kwargs = call
    assert fn.__name__ == ("status" if command.startswith("daemon") else command)
    assert click_params(argv) == kwargs


@pytest.mark.parametrize("argv", [["ls"], ["screen", "ID"], ["keys", "ID", "a", "b"], ["send", "ID", "hi"],
                                  ["approve", "ID", "--always"], ["deny", "ID", "--reason", "r"],
                                  ["log", "ID", "-f", "--json"], ["diff", "ID", "--stat"],
                                  ["daemon", "status", "--json"], ["keys", "ID", "--", "--json"]])
def test_everyday_calls_take_the_fast_path(argv: list[str]) -> None:
    call = cli_fast.parse(argv)
    assert call is not None and click_params(argv) == call[1]


def test_an_ascii_terminal_goes_to_click(wb: Wb) -> None:
    env = {**wb.env, "PYTHONIOENCODING": "ascii"}
    p = subprocess.run([sys.executable, "-c", "from workbench import cli_fast; print(cli_fast.run(['ls']))"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.stdout.strip() == "-1"


def test_a_refused_hello_reads_the_same_on_both_paths(wb: Wb) -> None:
    """The fast path sends its request with the hello: a daemon that refuses the hello
    (another protocol version) must still be reported as such, as the click CLI does."""
    import json
    import socket
    import threading

    from workbench import paths

    rt = paths.ensure_private_dir(paths.runtime_dir())
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(rt / "daemon.sock"))
    srv.listen()
    stop = threading.Event()

    def refuse() -> None:
        while not stop.is_set():
            conn, _ = srv.accept()
            with conn:
                conn.recv(65536)
                reply = {"id": 0, "error": {"code": "version", "message": "protocol mismatch: daemon speaks 9"}}
                conn.sendall(json.dumps(reply).encode() + b"\n")

    t = threading.Thread(target=refuse, daemon=True)
    t.start()
    try:
        for _ in range(5):  # the request may reach the socket before or after the hang-up
            res = same(wb, "screen", "ID")
            assert res == (1, "", "error: protocol mismatch: daemon speaks 9\n")
    finally:
        stop.set()
        srv.close()
