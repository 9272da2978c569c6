"""`workbench demo` inside the daemon: its scripted model servers (workbench.demo.script, the
daemon's one way into the demo layer) and the sessions a demo run creates. BuiltinAgents
(agent_ext.py) owns the servers, gives a demo session its server's provider, and serves the
`demo` method with `start_demo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.daemon.agent_host import BUILTIN
from workbench.daemon.session_create import CreateRequest
from workbench.protocol import session as ps

if TYPE_CHECKING:
    from workbench.agent.providers import ProviderConfig
    from workbench.daemon.api import Daemon
    from workbench.demo.script import FakeOpenAI


class DemoServers:
    """Scripted model servers for `workbench demo`, one per demo run, inside the daemon so
    they live as long as the sessions. Nothing here touches the user's config."""

    def __init__(self) -> None:
        self.servers: list[FakeOpenAI] = []
        self.by_session: dict[str, FakeOpenAI] = {}
        # The server of the demo run being created: a session that launches before the run
        # has mapped it (attempts are created one after another) gets this one.
        self.creating: FakeOpenAI | None = None

    def start(self) -> FakeOpenAI:
        from workbench.demo.script import FakeOpenAI, demo_scripts

        fake = FakeOpenAI(demo_scripts())
        fake.start()
        self.servers.append(fake)
        return fake

    def provider_config(self, session_id: str) -> ProviderConfig:
        from workbench.demo.script import demo_provider_config

        fake = self.by_session.get(session_id) or self.creating
        if fake is None:  # a demo session resumed after a daemon restart
            fake = self.start()
        self.by_session[session_id] = fake
        return demo_provider_config(fake.base_url)

    def stop_all(self) -> None:
        for fake in self.servers:
            fake.stop()
        self.servers.clear()
        self.by_session.clear()


async def start_demo(d: Daemon, servers: DemoServers, p: ps.DemoParams) -> ps.DemoResult:
    """Three built-in sessions on `repo`, driven by a scripted model served in the daemon,
    and two attempts on one task: the built-in agent and a scripted CLI in a terminal."""
    from workbench.demo.script import DEMO_MODEL, DEMO_SESSIONS

    repo = p["repo"]
    ok = bool(d.sandbox_status.get("ok"))
    sandbox = "workspace" if ok else "off"
    notice = "" if ok else (
        f"bubblewrap cannot run here ({d.sandbox_status.get('reason')}), so the demo sessions "
        "run with sandbox OFF (shown in red); they only touch the demo repo"
    )
    fake = servers.start()
    sessions: list[ps.DemoSession] = []
    for spec in DEMO_SESSIONS:
        name = spec.name
        n = 2
        while d.store.name_taken(name):
            name = f"{spec.name}-{n}"
            n += 1
        s, warnings = await d.manager.create(CreateRequest(
            repo=repo, agent=BUILTIN, name=name, sandbox=sandbox, approval=spec.approval,
            prompt=spec.prompt, provider="demo", extra={"demo": True},
        ))
        # No await since create() returned: the launcher has not run yet.
        servers.by_session[s.id] = fake
        sessions.append({**d.manager.describe(s), "warnings": warnings, "role": spec.role})
    servers.creating = fake
    try:
        sessions += await _demo_attempts(d, repo, sandbox)
    finally:
        servers.creating = None
    return {"repo": repo, "sandbox": sandbox, "notice": notice, "model": DEMO_MODEL,
            "base_url": fake.base_url, "sessions": sessions}


async def _demo_attempts(d: Daemon, repo: str, sandbox: str) -> list[ps.DemoSession]:
    from workbench.daemon.attempts import create_attempts
    from workbench.demo.script import ATTEMPT_PROMPT, ATTEMPT_ROLES, ATTEMPTS_NAME, terminal_agent_command

    base, n = ATTEMPTS_NAME, 2
    while d.store.name_taken(f"{base}-1") or d.store.name_taken(f"{base}-2"):
        base, n = f"{ATTEMPTS_NAME}{n}", n + 1
    template = CreateRequest(repo=repo, agent=BUILTIN, name=base, sandbox=sandbox, approval="full-auto",
                             prompt=ATTEMPT_PROMPT, provider="demo")
    _, created, warnings = await create_attempts(d, template, 2, [BUILTIN, terminal_agent_command()],
                                                 extra={"demo": True})
    return [{**d.manager.describe(s), "warnings": warnings, "role": role}
            for s, role in zip(created, ATTEMPT_ROLES, strict=True)]
