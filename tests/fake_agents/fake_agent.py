"""A fake agent CLI that looks and behaves enough like a real one to drive detection.

    fake_agent.py STYLE [CLI args...] [PROMPT]

STYLE picks the screens (codex, claude, aider, opencode, gemini, osc, bell). `--draw-delay=S`
waits S seconds after its first (invisible) terminal set-up before drawing anything. The fake works for
a moment (busy indicator, spinner title), asks for approval, waits for the answer key,
writes `fake_output.txt` in its working directory when approved, works again, then reports
the finished turn the way the real CLI does (Codex notify program, Claude hooks, aider
notifications command, OSC 9) and shows its idle prompt. Each later input line is echoed
after another short busy phase. `/exit` quits. Stdlib only: it runs inside the sandbox.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import termios
import time
import tomllib
import tty

STYLES: dict[str, dict[str, object]] = {
    "codex": {
        "busy": "\u2022 Working (0s \u2022 esc to interrupt)",
        "idle": "\u203a Ask Codex to do anything",
        "approval": ["Would you like to run the following command?", "$ touch fake_output.txt",
                     "\u203a 1. Yes, proceed (y)", "  2. Yes, and don't ask again (p)",
                     "  3. No, and tell Codex what to do differently (esc)",
                     "Press enter to confirm or esc to cancel"],
        "approve": "yp", "deny": "\x1b",
        "title_busy": "\u280b work", "title_wait": "[ ! ] Action Required | work", "title_idle": "work",
    },
    "claude": {
        "busy": "\u273b Thinking\u2026 (esc to interrupt)",
        "idle": "> ",
        "approval": ["Bash command", "  touch fake_output.txt", "Do you want to proceed?",
                     "\u276f 1. Yes", "  2. Yes, and don't ask again", "  3. No (esc)"],
        "approve": "12", "deny": "\x1b3",
    },
    "aider": {
        "busy": "Waiting for fake-model",
        "idle": "> ",
        "approval": ["Run shell command? (Y)es/(N)o [Yes]: "],
        "approve": "ya", "deny": "n",
    },
    "opencode": {
        "busy": "\u2699 working \u2026 esc interrupt",
        "idle": "\u2503 ",
        "approval": ["Permission required: bash touch fake_output.txt",
                     "Allow once (a)  Allow always (A)  Reject (r)"],
        # Enter takes the selected "Allow once", Esc rejects, as in opencode's dialog.
        "approve": "aA\r\n", "deny": "r\x1b",
    },
    "gemini": {
        "busy": "\u280b Thinking (esc to cancel, 1s)",
        "idle": "> Type your message or @path/to/file",
        "approval": ["Allow execution of: 'touch'?", "\u25cf 1. Yes, allow once",
                     "  2. Yes, allow always", "  3. No, suggest changes (esc)"],
        "approve": "12", "deny": "\x1b3",
    },
    "osc": {
        "busy": "working...",
        "idle": "ready>",
        "approval": ["approve touch fake_output.txt? [y/n]"],
        "approve": "y", "deny": "n", "osc": True,
    },
}

STYLES["bell"] = {**STYLES["osc"], "osc": False, "bell": True}

BUSY_S = float(os.environ.get("FAKE_BUSY_S", "0.4"))


class Fake:
    def __init__(self, style: str, args: list[str]) -> None:
        self.style = style
        self.st = STYLES[style]
        self.args = args
        self.lines: list[str] = [f"fake {style} agent, cwd {os.getcwd()}"]
        self.out = sys.stdout

    def w(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def title(self, key: str) -> None:
        t = self.st.get(key)
        if isinstance(t, str):
            self.w(f"\x1b]0;{t}\x07")

    def draw(self, extra: list[str]) -> None:
        body = [*self.lines[-20:], "", *extra]
        self.w("\x1b[2J\x1b[H" + "\r\n".join(body))

    def osc9(self, text: str) -> None:
        if self.st.get("osc"):
            self.w(f"\x1b]9;{text}\x07")

    def busy(self) -> None:
        self.title("title_busy")
        self.draw([str(self.st["busy"])])
        time.sleep(BUSY_S)

    def idle(self) -> None:
        self.title("title_idle")
        self.draw([str(self.st["idle"])])

    # hooks, as each real CLI does them

    def hook(self, what: str) -> None:
        if self.style == "codex" and what == "done":
            home = os.environ.get("CODEX_HOME", os.path.expanduser("~/.codex"))
            with open(os.path.join(home, "config.toml"), "rb") as f:
                notify = tomllib.load(f).get("notify")
            if notify:
                payload = {"type": "agent-turn-complete", "turn-id": "1", "input-messages": ["x"],
                           "last-assistant-message": "done"}
                subprocess.run([*notify, json.dumps(payload)], check=False)
        elif self.style == "claude":
            settings = self.args[self.args.index("--settings") + 1]
            with open(settings) as f:
                hooks = json.load(f)["hooks"]
            # At a permission dialog Claude Code runs PermissionRequest, then Notification.
            names = {"done": ["Stop"], "approval": ["PermissionRequest", "Notification"],
                     "prompt": ["UserPromptSubmit"]}[what]
            for name in names:
                for entry in hooks.get(name, []):
                    for h in entry["hooks"]:
                        payload = {"hook_event_name": name, "message": "Claude needs your permission to use Bash"}
                        subprocess.run(["/bin/sh", "-c", h["command"]], input=json.dumps(payload).encode(),
                                       check=False)
        elif self.style == "aider" and what == "done" and "--notifications-command" in self.args:
            cmd = self.args[self.args.index("--notifications-command") + 1]
            subprocess.run(["/bin/sh", "-c", cmd], check=False)

    # input

    def key(self) -> str:
        while True:
            r, _, _ = select.select([0], [], [], 60)
            if r:
                return os.read(0, 1).decode(errors="replace")

    def line(self) -> str:
        buf = ""
        while True:
            c = self.key()
            in_paste = buf.count("\x1b[200~") > buf.count("\x1b[201~")
            if c in ("\r", "\n") and not in_paste:
                return buf.replace("\x1b[200~", "").replace("\x1b[201~", "").replace("\n", " | ")
            buf += c

    # the scripted task

    def ask(self) -> bool:
        stamp_dir = os.environ.get("FAKE_STAMP_DIR")
        if stamp_dir:
            with open(os.path.join(stamp_dir, f"{os.getpid()}-approval"), "w") as f:
                f.write(repr(time.time()))
        self.title("title_wait")
        if self.style == "claude":
            self.hook("approval")
            time.sleep(0.3)  # the hook lands first, as with the real CLI
        approval = self.st["approval"]
        assert isinstance(approval, list)
        self.draw(approval)
        self.osc9("Approval requested: touch fake_output.txt")
        if self.st.get("bell"):
            self.w("\x07")
        while True:
            k = self.key()
            if k in str(self.st["approve"]):
                self.keep_prompt(approval, k)
                return True
            if k in str(self.st["deny"]):
                self.keep_prompt(approval, k)
                return False

    def keep_prompt(self, approval: list[str], key: str) -> None:
        # aider prints its question into the scrolling chat: it stays on screen, answered.
        if self.style == "aider":
            self.lines.append(approval[-1] + key.strip())

    def task(self, prompt: str) -> None:
        self.lines.append(f"> {prompt}")
        self.busy()
        if self.ask():
            with open("fake_output.txt", "a") as f:
                f.write(f"done: {prompt}\n")
            self.lines.append("approved: wrote fake_output.txt")
        else:
            self.lines.append("denied")
        self.busy()
        self.finish()

    def finish(self) -> None:
        self.idle()
        self.hook("done")
        self.osc9("Task complete")

    def run(self) -> None:
        self.w("\x1b[?2004h")
        delay = [a for a in self.args if a.startswith("--draw-delay=")]
        if delay:
            time.sleep(float(delay[0].split("=", 1)[1]))
        prompt = prompt_of(self.style, self.args)
        if "resume" in self.args or "--continue" in self.args or "--restore-chat-history" in self.args:
            self.lines.append("resumed the last conversation")
            self.busy()
            self.finish()
        elif prompt and self.style != "aider":
            self.task(prompt)
        else:
            self.idle()
            if self.style == "aider":
                self.hook("done")
        first = True
        while True:
            text = self.line().strip()
            if not text:
                continue
            if text == "/exit":
                return
            if self.style == "claude":
                self.hook("prompt")
            if first and self.style == "aider" and not prompt:
                first = False
                self.task(text)
                continue
            self.lines.append(f"> {text}")
            self.busy()
            self.lines.append(f"echo: {text}")
            self.finish()


def prompt_of(style: str, args: list[str]) -> str:
    """The prompt where each real CLI takes it: a flag's value or the last positional."""
    flag = {"opencode": "--prompt", "gemini": "--prompt-interactive"}.get(style)
    if flag:
        return args[args.index(flag) + 1] if flag in args else ""
    if style == "aider":
        return ""
    takes_value = {"--permission-mode", "--settings", "--notifications-command"}
    positional: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in takes_value:
            skip = True
        elif not a.startswith("-") and a not in ("resume",):
            positional.append(a)
    return positional[-1] if positional else ""


def main() -> None:
    style, args = sys.argv[1], sys.argv[2:]
    old = termios.tcgetattr(0)
    tty.setcbreak(0)
    try:
        Fake(style, args).run()
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, old)


if __name__ == "__main__":
    main()
