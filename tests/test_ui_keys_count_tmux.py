"""Issue 16's keystroke targets, counted in the real UI in a real terminal (tmux) against a
real daemon and the fake model server:

- from an attached terminal, the session that waits is answered in 2 keys (ctrl+space, y),
  and the program in the terminal still gets ctrl+space (NUL): at once when nobody else
  waits, by pressing it twice when someone does;
- a hunk is rejected with a reason that reaches an idle agent in 3 keys + the reason
  (ctrl+space lands on the first hunk to review, x, the reason, Enter)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_support import Factory, calls, shell
from tests.helpers import wait_for
from tests.test_agent_daemon import point, wait_waiting
from tests.test_e2e_tmux import Tmux
from tests.wb import Wb
from workbench.fakes.model_server import Script, Turn

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
UI = f"{sys.executable} -m workbench"
GOT_NUL = "got b'\\x00'"
REASON = "keep the old flag name"


@pytest.fixture
def term() -> Iterator[Tmux]:
    t = Tmux(120, 35)
    yield t
    t.kill()


def reader(mark: str) -> str:
    """A command line for the attached shell: one keystroke read raw, its bytes printed."""
    return (f"{sys.executable} -c \"import os, tty; tty.setraw(0); print('RE''ADY{mark}', flush=True); "
            "print('got', repr(os.read(0, 8)))\"")


def run_reader(term: Tmux, mark: str) -> None:
    term.type(reader(mark))
    term.send("Enter")
    term.wait(f"READY{mark}", timeout=30)


def test_from_a_terminal_the_answer_is_two_keys_and_the_program_still_gets_nul(
        wb: Wb, repo: Path, term: Tmux, fake_factory: Factory) -> None:
    fake = fake_factory([Script("", [calls(shell(["touch", "made-by-agent"])), Turn(text="done")])])
    point(wb, fake)
    sh = wb.new(repo, "--sandbox", "off", "--name", "sh")
    wb.wait_state(sh, "running", timeout=30)
    term.type(f"{UI} attach {sh}")
    term.send("Enter")
    term.wait("● sh running  ⚠", timeout=30)  # the pane's header: attached to it
    time.sleep(1)
    term.type("echo at-$((2+3))")
    term.send("Enter")
    term.wait("at-5", timeout=30)  # attached: keys go to the shell

    # nobody waits: ctrl+space is the program's, one key
    run_reader(term, "1")
    term.send("C-Space")
    wait_for(lambda: wb.screen(sh).count(GOT_NUL) == 1, 30, what="NUL read by the program")

    # someone waits: the first press jumps, a second one goes back and sends it after all
    bi = wb.new(repo, "--agent", "builtin", "--prompt", "create the marker file", "--sandbox", "off",
                "--name", "bi")
    wait_waiting(wb, bi, "touch made-by-agent")
    term.wait("◆ bi", timeout=30)
    run_reader(term, "2")
    term.send("C-Space")
    term.wait("ctrl+space again: back to sh", timeout=30)
    term.send("C-Space")
    wait_for(lambda: wb.screen(sh).count(GOT_NUL) == 2, 30, what="the second NUL read by the program")
    term.type("echo back-$((3+4))")
    term.send("Enter")
    term.wait("back-7", timeout=30)  # attached again, to the same shell
    assert wb.session(bi)["approval_pending"] is not None  # the double press answered nothing

    # the answer: the jump key and y
    keys = 0
    term.send("C-Space")
    keys += 1
    term.wait("r deny with a reason", timeout=30)
    time.sleep(0.6)  # the card arms 0.4 s after it is focused (a stray key cannot answer)
    term.send("y")
    keys += 1
    assert keys == 2

    def approved() -> bool:
        log = json.loads(wb.run("log", bi, "--json").stdout)
        return any(e["kind"] == "approval" and e["data"].get("decision") == "approve" for e in log)

    wait_for(approved, 30, what="the approval in the session's log")
    wait_for(lambda: (Path(wb.session(bi)["worktree"]) / "made-by-agent").exists(), 30, what="the command ran")
    assert "sh" in wb.screen(sh)  # the shell saw no stray key: its screen is still the reader's
    assert wb.screen(sh).count(GOT_NUL) == 2


def test_a_rejected_hunk_with_a_reason_reaches_an_idle_agent_in_three_keys(
        wb: Wb, repo: Path, term: Tmux, fake_factory: Factory) -> None:
    fake = fake_factory([Script("", [Turn(text="Renamed the flag."), Turn(text="Put the old name back.")])])
    point(wb, fake)
    bi = wb.new(repo, "--agent", "builtin", "--prompt", "rename the flag", "--sandbox", "off", "--name", "bi")
    wait_for(lambda: wb.session(bi)["state"] == "waiting" and not wb.session(bi).get("turn_active"), 30,
             what="the turn ends")
    wt = Path(wb.session(bi)["worktree"])
    (wt / "flags.txt").write_text("--verbose\n")
    wait_for(lambda: wb.session(bi).get("files_changed"), 30, what="the change seen by the daemon")
    term.type(f"cd {repo} && {UI}")
    term.send("Enter")
    term.wait("◆ bi", timeout=30)
    time.sleep(1)

    keys = 0
    term.send("C-Space")  # the jump: bi's diff, the cursor on its first hunk to review
    keys += 1
    term.wait("reviewed 0/1", timeout=30)
    time.sleep(0.5)
    term.send("x")
    keys += 1
    term.wait("Reject", timeout=30)
    term.type(REASON)
    term.send("Enter")
    keys += 1
    assert keys == 3

    wait_for(lambda: len(fake.requests) >= 2, 30, what="the agent's next request")
    assert REASON in json.dumps(fake.requests[-1].body)
    sent = [e for e in wb.json("events", bi) if e["kind"] == "review_sent"]
    assert len(sent) == 1 and REASON in sent[0]["data"]["text"]


ASKER = ("import os, sys, tty; tty.setraw(0); "
         "sys.stdout.write('\\033]9;asker: approval needed: apply the edit?\\a Apply the edit? [y/n] '); "
         "sys.stdout.flush(); k = os.read(0, 1); print('\\r\\nanswered', k.decode(), flush=True); "
         "import time; time.sleep(600)")


def test_a_terminal_agent_asking_is_answered_in_two_keys(wb: Wb, repo: Path, term: Tmux) -> None:
    """A terminal agent (a plain command) asks a y/n question: the jump attaches its terminal,
    so the answer is the next key, typed into the program."""
    ask = wb.new(repo, "--agent", f"{sys.executable} -c \"{ASKER}\"", "--sandbox", "off", "--name", "asker")
    wait_for(lambda: wb.session(ask)["state"] == "waiting", 30, what="the question seen as waiting")
    term.type(f"cd {repo} && {UI}")
    term.send("Enter")
    term.wait("◆ asker", timeout=30)
    time.sleep(1)
    keys = 0
    term.send("C-Space")  # the jump: its terminal, attached
    keys += 1
    time.sleep(1)  # the attach lands after a refresh
    term.send("y")
    keys += 1
    assert keys == 2
    wait_for(lambda: "answered y" in wb.screen(ask), 30, what="the answer read by the program")
