"""New session (ctrl+n): every choice in one screen; Enter in a text field starts it.

The built-in agent's provider (a `[providers.NAME]` of config.toml, read when the dialog
opens, so one added a moment ago is offered) and model apply to it alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Select, Static, Switch

from workbench import config
from workbench.errors import WorkbenchError
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
    ]

    def __init__(self, form: NewSessionForm, error: str = "") -> None:
        super().__init__()
        self.form = form
        self.error = error

    def compose(self) -> Any:
        f = self.form
        with Vertical():
            yield Static(Content.assemble(("New session", "bold"),
                                          ("   Enter (or ctrl+s) starts it · Esc cancels", "dim")))
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

        return NewSessionForm(
            repo=text("repo"), prompt=text("prompt"), agent=text("agent") or "shell",
            approval=str(self.query_one("#approval", Select).value),
            sandbox=str(self.query_one("#sandbox", Select).value),
            network=self.query_one("#network", Switch).value,
            base=text("base"), name=text("name"), provider=text("provider"), model=text("model"),
            recent=self.form.recent, host=text("host") if self.form.hosts else "", hosts=self.form.hosts,
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

    def action_cancel(self) -> None:
        self.dismiss(None)
