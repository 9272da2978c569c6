"""New session (ctrl+n): every choice in one screen; Enter in a text field starts it.

The built-in agent's provider (a `[providers.NAME]` of config.toml, read when the dialog
opens, so one added a moment ago is offered) and model apply to it alone.

Attempts (best-of-N): `ctrl+t` (from any field) adds an attempt with the next agent; the
Attempts row under the Agent field chooses which agents (space) and how many sessions
(+/-). More than one starts an attempt group (`new_attempts`), compared with the main
screen's compare key: `ctrl+n`, the prompt, `ctrl+t`, `enter`, `P`. The row comes after the
Agent field in the tab order, so tabbing to the agent takes no more keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from workbench import config
from workbench.errors import WorkbenchError
from workbench.protocol.review import NewAttemptsParams
from workbench.protocol.session import NewParams

AGENTS = ["shell", "builtin", "codex", "claude", "aider", "opencode", "gemini"]


@dataclass
class NewSessionForm:
    repo: str = ""
    prompt: str = ""
    agent: str = "shell"
    approval: str = "suggest"
    sandbox: str = "workspace"
    network: bool = False
    base: str = ""
    name: str = ""
    provider: str = ""  # built-in agent: blank is the config's [session].provider
    model: str = ""  # built-in agent: blank is the provider's model
    recent: list[str] = field(default_factory=list)
    host: str = ""  # a remote host (docs/remote.md); blank or `local` is this machine
    hosts: list[str] = field(default_factory=list)  # the configured ones: the row shows only then
    also: list[str] = field(default_factory=list)  # attempts: agents besides `agent`
    attempts: int = 1

    def agents(self) -> list[str]:
        """One agent per attempt, in the order they repeat: the Agent field's first."""
        first = self.agent.strip() or "shell"
        return [first, *(a for a in self.also if a != first)]

    def attempts_params(self, p: NewParams) -> NewAttemptsParams | None:
        """`new_attempts` params for `p` (sized by the screen), or None for one session."""
        agents = self.agents()
        n = max(self.attempts, len(agents))
        if n < 2:
            return None
        ap = NewAttemptsParams(**p, attempts=n)
        if len(agents) > 1:
            ap["agents"] = agents
            ap.pop("agent", None)
        return ap

    def params(self) -> NewParams:
        p = NewParams(repo=self.repo.strip(), approval=self.approval, sandbox=self.sandbox,
                      network=self.network, prompt=self.prompt)
        if self.agent.strip():
            p["agent"] = self.agent.strip()
        if self.base.strip():
            p["base"] = self.base.strip()
        if self.name.strip():
            p["name"] = self.name.strip()
        if self.host.strip() not in ("", "local"):
            p["host"] = self.host.strip()
        if (self.agent.split() or [""])[0] == "builtin":
            if self.provider.strip():
                p["provider"] = self.provider.strip()
            if self.model.strip():
                p["model"] = self.model.strip()
        return p


def provider_names() -> list[str]:
    """The providers config.toml defines now (none when it cannot be read: `new` says why)."""
    try:
        return sorted(config.load().providers)
    except (WorkbenchError, OSError):
        return []


class AttemptsPicker(Widget, can_focus=True):
    """One line: how many attempts, and the agents they use besides the Agent field's."""

    DEFAULT_CSS = """
    AttemptsPicker { height: 1; width: 1fr; padding: 0 1; background: $boost; }
    AttemptsPicker:focus { background: $primary 25%; }
    """
    BINDINGS = [
        Binding("right,l", "move(1)", "Next agent", show=False),
        Binding("left,h", "move(-1)", "Previous agent", show=False),
        Binding("space,x", "choose", "Add agent", show=False),
        Binding("plus,equals_sign", "count(1)", "More attempts", show=False),
        Binding("minus", "count(-1)", "Fewer attempts", show=False),
        Binding("enter", "submit", "Start", show=False),
    ]
    MAX = 10

    class Submit(Message):
        pass

    def __init__(self, choices: list[str], also: list[str], count: int, id: str | None = None) -> None:
        super().__init__(id=id)
        self.choices = choices
        self.also = [a for a in choices if a in also]
        self.count = count
        self.cursor = 0

    def total(self) -> int:
        return min(self.MAX, max(self.count, 1 + len(self.also)))

    def render(self) -> Content:
        n = self.total()
        head = f"{n} session{'s' if n > 1 else ''}  + "
        # A narrow dialog shows the agents from the cursor's on ("…" for those before).
        room = self.content_size.width - len(head)
        first = 0
        while first < self.cursor and sum(len(a) + 2 for a in self.choices[first:self.cursor + 1]) + 2 > room:
            first += 1
        parts: list[tuple[str, str] | str] = [(head[:-4], "bold" if n > 1 else "$text-muted"), "  + "]
        if first:
            parts.append(("… ", "$text-muted"))
        for i, a in enumerate(self.choices[first:], first):
            mark = "✓" if a in self.also else "·"
            style = "bold $success" if a in self.also else "$text-muted"
            if self.has_focus and i == self.cursor:
                style += " reverse"
            parts += [(f"{mark}{a}", style), " "]
        return Content.assemble(*parts)

    def action_move(self, step: int) -> None:
        if self.choices:
            self.cursor = (self.cursor + step) % len(self.choices)
            self.refresh()

    def action_choose(self) -> None:
        if not self.choices:
            return
        a = self.choices[self.cursor]
        if a in self.also:
            self.also.remove(a)
            self.count = min(self.count, 1 + len(self.also))
        else:
            self.also = [c for c in self.choices if c in self.also or c == a]
        self.refresh()

    def set_agent(self, agent: str) -> None:
        """The Agent field changed: offer every other agent, keep the ones chosen."""
        current = self.choices[self.cursor] if self.choices else ""
        self.choices = [a for a in AGENTS if a != agent]
        self.also = [a for a in self.choices if a in self.also]
        self.cursor = self.choices.index(current) if current in self.choices else 0
        self.refresh()

    def add_next(self) -> None:
        """One more attempt: the first agent not chosen yet, else one more session."""
        left = [a for a in self.choices if a not in self.also]
        if left:
            self.also = [c for c in self.choices if c in self.also or c == left[0]]
            self.cursor = self.choices.index(left[0])
        self.count = min(self.MAX, self.total() + (0 if left else 1))
        self.refresh()

    def action_count(self, step: int) -> None:
        self.count = max(1, min(self.MAX, self.total() + step))
        self.refresh()

    def action_submit(self) -> None:
        self.post_message(self.Submit())

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


class NewSessionScreen(ModalScreen[NewSessionForm | None]):
    DEFAULT_CSS = """
    NewSessionScreen { align: center middle; }
    NewSessionScreen > Vertical { width: 90%; max-width: 100; height: auto; max-height: 100%;
                                  border: round $primary; background: $surface; padding: 0 1; }
    NewSessionScreen .row { height: 1; margin-top: 1; }
    NewSessionScreen .row > Label { width: 10; padding: 0 1 0 0; }
    NewSessionScreen .row > Input, NewSessionScreen .row > Select { width: 1fr; }
    NewSessionScreen Input { border: none; height: 1; padding: 0 1; background: $boost; }
    NewSessionScreen Input:focus { background: $primary 25%; border: none; }
    NewSessionScreen Select { height: 1; }
    NewSessionScreen SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    NewSessionScreen Select:focus > SelectCurrent { background: $primary 25%; }
    NewSessionScreen Switch { border: none; height: 1; padding: 0; width: 6; }
    NewSessionScreen Switch:focus { background: $primary 25%; }
    NewSessionScreen #error { color: $error; height: auto; }
    NewSessionScreen #recent { color: $text-muted; height: auto; }
    """
    BINDINGS = [
        Binding("ctrl+s", "submit", "Start", id="new.submit"),
        Binding("escape", "cancel", "Cancel", id="new.cancel"),
        Binding("ctrl+t", "add_attempt", "Add an attempt", id="new.attempt"),
    ]

    def __init__(self, form: NewSessionForm, error: str = "") -> None:
        super().__init__()
        self.form = form
        self.error = error

    def compose(self) -> Any:
        f = self.form
        with Vertical():
            yield Static(Content.assemble(("New session", "bold"),
                                          ("   Enter starts it · ctrl+t adds an attempt · Esc cancels", "dim")))
            with Horizontal(classes="row"):
                yield Label("Prompt")
                yield Input(f.prompt, placeholder="what should the agent do? (optional)", id="prompt")
            with Horizontal(classes="row"):
                yield Label("Repo")
                yield Input(f.repo, placeholder="path to a git repository", id="repo",
                            suggester=SuggestFromList(f.recent, case_sensitive=True))
            if f.recent:
                recent = "  ".join(f.recent[:4])
                yield Static(Content("recent: " + recent), id="recent")
            if f.hosts:
                with Horizontal(classes="row"):
                    yield Label("Host")
                    yield Input(f.host, placeholder="this machine (the repo is a path on the host)", id="host",
                                suggester=SuggestFromList(["local", *f.hosts]))
            with Horizontal(classes="row"):
                yield Label("Agent")
                yield Input(f.agent, placeholder="shell, builtin, or a command", id="agent",
                            suggester=SuggestFromList(AGENTS))
            with Horizontal(classes="row"):
                yield Label("Attempts")
                yield AttemptsPicker([a for a in AGENTS if a != f.agent.strip()], f.also, f.attempts,
                                     id="attempts")
            providers = provider_names()
            with Horizontal(classes="row"):
                yield Label("Provider")
                yield Input(f.provider, id="provider", suggester=SuggestFromList(providers),
                            placeholder="builtin only: " + (", ".join(providers[:4]) or "default"))
                yield Label("Model")
                yield Input(f.model, placeholder="the provider's", id="model")
            with Horizontal(classes="row"):
                yield Label("Approval")
                yield Select([(m, m) for m in ("suggest", "auto-edit", "full-auto")],
                             value=f.approval, allow_blank=False, id="approval")
            with Horizontal(classes="row"):
                yield Label("Sandbox")
                yield Select([(m, m) for m in ("workspace", "strict", "off")],
                             value=f.sandbox, allow_blank=False, id="sandbox")
            with Horizontal(classes="row"):
                yield Label("Network")
                yield Switch(f.network, id="network")
                yield Label("Base")
                yield Input(f.base, placeholder="HEAD", id="base")
                yield Label("Name")
                yield Input(f.name, placeholder="auto", id="name")
            yield Static(Content(self.error), id="error")

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()

    def collect(self) -> NewSessionForm:
        def text(wid: str) -> str:
            return self.query_one(f"#{wid}", Input).value

        picker = self.query_one(AttemptsPicker)

        return NewSessionForm(
            repo=text("repo"), prompt=text("prompt"), agent=text("agent") or "shell",
            approval=str(self.query_one("#approval", Select).value),
            sandbox=str(self.query_one("#sandbox", Select).value),
            network=self.query_one("#network", Switch).value,
            base=text("base"), name=text("name"), provider=text("provider"), model=text("model"),
            recent=self.form.recent, also=list(picker.also), attempts=picker.total(),
            host=text("host") if self.form.hosts else "", hosts=self.form.hosts,
        )

    def action_submit(self) -> None:
        form = self.collect()
        if not form.repo.strip():
            self.query_one("#error", Static).update("a repository path is needed")
            self.query_one("#repo", Input).focus()
            return
        self.dismiss(form)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "agent":
            self.query_one(AttemptsPicker).set_agent(event.value.strip() or "shell")

    def on_attempts_picker_submit(self, event: AttemptsPicker.Submit) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_add_attempt(self) -> None:
        self.query_one(AttemptsPicker).add_next()
