"""The demo's external agent: a scripted stand-in for a terminal coding agent (codex, aider).

`workbench demo` runs it as a PTY session in the sample repo (standard library only, under
`python -I -S -B`, so it imports nothing and writes no bytecode). Like a real CLI it prints
what it does, asks before it edits (a desktop notification, OSC 9, tells workbench it
waits), edits calc.py when told yes, says when it is done (OSC 9 again), and then reads
messages (a review, a failing check) at its prompt, as a chat-style CLI does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

TASK = "Fix the failing test in calc.py."
BUGGY = "    return sum(values) / (len(values) + 1)\n"
FIXED = ('    if not values:\n'
         '        raise ValueError("mean() of an empty list")\n'
         '    return sum(values) / len(values)\n')
BOLD, DIM, GREEN, RED, CYAN, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[36m", "\033[0m"


def say(text: str = "", pause: float = 0.25) -> None:
    sys.stdout.write(text + "\r\n" if text else "\r\n")
    sys.stdout.flush()
    time.sleep(pause)


def notify(text: str) -> None:
    """A desktop notification (OSC 9): how a plain command tells workbench it waits or is done."""
    sys.stdout.write(f"\033]9;{text}\a")
    sys.stdout.flush()


def read_key() -> str:
    """One key, as CLIs read their y/n prompts (a line when stdin is no terminal)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()[:1]
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        return sys.stdin.read(1)
    finally:
        # TCSAFLUSH: the rest of what was typed with the key (`workbench send` adds enter) goes.
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)


def ask(question: str) -> str:
    notify(f"demo-agent: approval needed: {question}")
    sys.stdout.write(f"{BOLD}{question}{RESET} [y/n] ")
    sys.stdout.flush()
    key = read_key().lower()
    say(key)
    return key


def propose(calc: Path) -> bool:
    """Show the edit, ask for it, apply it on yes: whether it was applied."""
    say(f"{CYAN}•{RESET} proposed edit to calc.py:")
    say(f"{DIM}  @@ def mean(values):{RESET}", 0.05)
    say(f"{RED}  -{BUGGY.rstrip()}{RESET}", 0.05)
    for line in FIXED.splitlines():
        say(f"{GREEN}  +{line}{RESET}", 0.05)
    say()
    answer = ask("Apply this edit to calc.py?")
    text = calc.read_text(encoding="utf-8")
    if answer != "y" or BUGGY not in text:
        say("Not applied." if BUGGY in text else "calc.py changed meanwhile; not applied.")
        return False
    calc.write_text(text.replace(BUGGY, FIXED), encoding="utf-8")
    say(f"{GREEN}✓{RESET} edited calc.py: mean() divides by len(values) and refuses an empty list")
    return True


def main() -> int:
    say(f"{BOLD}demo-agent{RESET} {DIM}0.1 · a scripted terminal agent (offline){RESET}")
    say(f"{BOLD}task:{RESET} {TASK}")
    say()
    calc = Path("calc.py")
    if not calc.is_file():
        say(f"{RED}no calc.py here{RESET}: run me in the demo repository")
        return 1
    say(f"{CYAN}•{RESET} running python3 -m unittest …", 0.6)
    say("  FAIL: test_mean: 3.0 != 4")
    say(f"{CYAN}•{RESET} reading calc.py …", 0.6)
    say("  mean() divides by len(values) + 1: one too many")
    say()
    propose(calc)
    notify("demo-agent: done, turn complete")
    while True:
        sys.stdout.write(f"\r\n{BOLD}>{RESET} ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return 0
        message = line.strip()
        if message in ("exit", "quit", "/exit"):
            return 0
        if message:
            say(f"{DIM}(scripted: a real agent would now act on your message){RESET}")
            notify("demo-agent: done, turn complete")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
