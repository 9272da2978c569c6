"""SessionManager: creates, runs, recovers and removes sessions.

The store is the source of truth; runtimes (PTY processes, agent loops) are attached to
sessions while the daemon runs. After a crash every session is reloaded from the store.
What a new session is (request, modes, worktree) is session_create.py's.

Over 400 lines because the manager is the one owner of sessions and their runtimes: every
state change, PTY launch and exit, delivery to an agent, stop, restart and removal goes
through it, and its extensions' hooks are called from these places in one order. Pieces
that need none of that state have their own modules (session_create, session_git,
sandboxing, pty_runtime, disk_use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from workbench import config as config_mod
from workbench import paths
from workbench.config import Config
from workbench.core import session_names, session_repo
from workbench.core import worktree as wt
from workbench.core.git_runner import run_git, stderr_text
from workbench.core.models import ATTENTION_ORDER, Session, SessionState
from workbench.core.pty import process_start_time
from workbench.core.screen import ScreenEvent
from workbench.core.store import Store
from workbench.daemon.bus import Bus, LogRecorded, SessionChanged, SessionRemoved, TurnFinished
from workbench.daemon.disk_use import DiskUse
from workbench.daemon.extensions import Extension, Launcher, PtyObserver
from workbench.daemon.hub import Hub
from workbench.daemon.pty_runtime import PtyRuntime
from workbench.daemon.sandboxing import LaunchSpec, forget, sandbox_command
from workbench.daemon.sandboxing import prepare as prepare_sandbox
from workbench.daemon.session_create import CreateRequest, build_session, check_modes, resolve_command
from workbench.daemon.session_git import SessionGit
from workbench.errors import NotFound, UsageError, WorkbenchError
from workbench.protocol.session import SessionInfo

if TYPE_CHECKING:
    E = TypeVar("E", bound=Extension)

# Programs that would run a typed message as commands.
_SHELLS = frozenset({"bash", "sh", "zsh", "fish", "dash", "ksh", "tcsh", "csh", "nu", "pwsh"})
log = logging.getLogger(__name__)

LIVE_STATES = {SessionState.STARTING, SessionState.RUNNING, SessionState.WAITING}


class SessionManager:
    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub  # frames only; events go through the bus, which the hub follows
        self.bus = Bus()
        hub.follow(self.bus, self.describe)
        self.sessions: dict[str, Session] = {}
        self.runtimes: dict[str, Any] = {}
        self.disk = DiskUse(self.sessions.__contains__)
        self._git: SessionGit | None = None
        self._launchers: dict[str, Launcher] = {}  # non-PTY agents, from extensions
        self.extensions: list[Extension] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        # git's worktree bookkeeping is not safe against concurrent `worktree add` in one repo.
        self._repo_locks: dict[str, asyncio.Lock] = {}
        self._reserved: set[str] = set()  # names of sessions being created right now
        self.sandbox_probe: Any = None
        self._observers: dict[str, list[PtyObserver]] = {}

    # extensions

    def add_extension(self, ext: Extension) -> None:
        """Register a feature; its hooks run after those of the ones registered before."""
        self.extensions.append(ext)
        self._launchers.update(ext.launchers())

    def launcher_for(self, agent: str) -> Launcher | None:
        """The launcher of an agent kind: the first word of `--agent`, or what comes before
        its `:` (`acp:gemini`)."""
        word = agent.split()[0] if agent.strip() else agent
        return self._launchers.get(word) or self._launchers.get(word.split(":", 1)[0])

    def extension(self, kind: type[E]) -> E | None:
        """The registered extension of this class (socket handlers find their feature here)."""
        return next((e for e in self.extensions if isinstance(e, kind)), None)

    def require_extension(self, kind: type[E], feature: str) -> E:
        """`extension(kind)`, or a clear error naming the `feature` this daemon lacks."""
        ext = self.extension(kind)
        if ext is None:
            raise WorkbenchError(f"{feature} is not loaded in this daemon")
        return ext

    # lookup

    def get(self, key: str) -> Session:
        if not isinstance(key, str) or not key:
            raise UsageError("missing session id")
        if key in self.sessions:
            return self.sessions[key]
        by_name = [s for s in self.sessions.values() if s.name == key]
        if by_name:
            return by_name[0]
        by_prefix = [s for s in self.sessions.values() if s.id.startswith(key)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            raise UsageError(f"session id prefix {key!r} is ambiguous")
        raise NotFound(f"no session {key!r}", hint="see `workbench ls`")

    def listing(self) -> list[SessionInfo]:
        return [self.describe(s) for s in self.sessions.values()]

    def describe(self, s: Session) -> SessionInfo:
        """The session on the wire (protocol.session.SessionInfo) with each extension's keys."""
        d = s.to_dict()
        d["disk_bytes"] = self.disk.of(s)
        d["needs_attention"] = s.state in ATTENTION_ORDER
        rt = self.runtimes.get(s.id)
        d["alive"] = bool(rt and getattr(rt, "alive", False))
        for ext in self.extensions:
            d.update(ext.describe(s))
        return cast(SessionInfo, d)

    def disk_sizes_known(self) -> bool:
        """Whether `describe` would walk no worktree: each size has been measured once."""
        return self.disk.known(self.sessions.values())

    # state

    def set_state(self, s: Session, state: SessionState, reason: str = "", *, gate: bool = True,
                  **data: Any) -> None:
        """Move `s` to `state`. From `running` to `review` is a turn's end: `TurnFinished` is
        published first and a subscriber may hold the session in `running` (`gate=False`
        is the holder's own move on)."""
        if gate and state == SessionState.REVIEW and s.state == SessionState.RUNNING:
            turn = TurnFinished(s)
            self.bus.publish(turn)
            if turn.held:
                state, reason = SessionState.RUNNING, turn.held[0]
        if s.state == state and not reason and not data:
            return
        old = s.state
        s.state = state
        s.state_since = time.time()
        if reason or state in (SessionState.RUNNING, SessionState.STARTING):
            s.reason = reason
        self.store.save_session(s)
        self.store.add_event(s.id, "state", {"from": str(old), "to": str(state), "reason": reason, **data})
        log.info("session %s: %s -> %s %s", s.id, old, state, reason)
        self.bus.publish(SessionChanged(s, old, state))

    def publish_session(self, s: Session) -> None:
        """Something shown of `s` other than its state changed (stats, reason, approval...)."""
        self.bus.publish(SessionChanged(s, s.state, s.state))

    def record(self, s: Session, kind: str, data: Mapping[str, Any]) -> None:
        entry = dict(data)  # a copy: later changes by the caller are not logged
        seq = self.store.add_event(s.id, kind, entry)
        self.bus.publish(LogRecorded(s, seq, time.time(), kind, entry))

    # startup / recovery

    async def recover(self) -> None:
        """Load every session, mark the ones whose process was lost stopped, then let each
        extension resume what it runs (`after_recover`, in registration order)."""
        prior: dict[str, SessionState] = {}
        for s in self.store.sessions():
            prior[s.id] = s.state
            self.sessions[s.id] = s
            if s.state in LIVE_STATES or (s.pid and s.state != SessionState.STOPPED):
                self._reap_orphan(s)
                if s.state in LIVE_STATES:
                    self.set_state(
                        s,
                        SessionState.STOPPED,
                        "daemon restarted: the session's process was lost; `workbench restart` resumes it",
                    )
            if not s.in_place and not Path(s.worktree).exists():
                s.reason = f"worktree missing: {s.worktree}"
                self.store.save_session(s)
        for ext in self.extensions:
            await ext.after_recover(prior)

    def _reap_orphan(self, s: Session) -> None:
        """Kill what is left of a session from a crashed daemon, if it is really still ours."""
        start = s.extra.get("pid_start")
        if not s.pid or start is None or process_start_time(s.pid) != start:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(s.pid, signal.SIGHUP)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(s.pid, signal.SIGKILL)

    # creation

    async def create(self, req: CreateRequest) -> tuple[Session, list[str]]:
        if not req.repo:
            raise UsageError("missing --repo")
        info = await asyncio.to_thread(wt.inspect_repo, Path(req.repo))
        cfg = config_mod.load(info.root)
        agent = req.agent or cfg.session.agent
        name = wt.validate_name(req.name) if req.name else self.free_name(agent, req.prompt)
        if self.store.name_taken(name) or name in self._reserved:
            raise UsageError(f"a session named {name!r} already exists", hint="pick another --name")
        self._reserved.add(name)
        try:
            return await self._create(req, info, cfg, agent, name)
        finally:
            self._reserved.discard(name)

    async def _create(
        self, req: CreateRequest, info: wt.RepoInfo, cfg: Config, agent: str, name: str
    ) -> tuple[Session, list[str]]:
        sandbox, approval = check_modes(req, cfg)
        launcher = self.launcher_for(agent)
        command = [] if launcher or self._resolves(agent, cfg) else resolve_command(agent)
        if sandbox != "off":
            self.require_sandbox(sandbox)
        for ext in self.extensions:
            ext.check_new(req, cfg, agent)
        s, warnings = await build_session(
            self.store, req, info, cfg, agent=agent, name=name, sandbox=sandbox, approval=approval,
            command=command, repo_lock=self._repo_locks.setdefault(str(info.root), asyncio.Lock()),
        )
        if s.sandbox != "off":  # its git and home now, off the loop: the start then only spawns
            with contextlib.suppress(WorkbenchError, OSError):  # said by the start, which tries again
                await asyncio.to_thread(prepare_sandbox, s)
        self.sessions[s.id] = s
        self.record(s, "created", {"repo": s.repo, "branch": s.branch, "base": s.base_commit, "warnings": warnings})
        self.spawn(self._start(s, cfg, first=True))
        return s, warnings

    def _resolves(self, agent: str, cfg: Config) -> bool:
        probe = Session(id="probe", name="probe", repo="", branch="", worktree="", base_commit="",
                        base_ref="", agent=agent, command=[])
        return any(ext.resolve_command(probe, cfg, False) is not None for ext in self.extensions)

    def _name_taken(self, name: str) -> bool:
        return self.store.name_taken(name) or name in self._reserved

    def free_name(self, agent: str, prompt: str | None = None) -> str:
        """A name from the prompt's first words (made unique), else the first unused
        `<agent>-<n>`."""
        from_prompt = session_names.name_from_prompt(prompt or "")
        if from_prompt:
            return session_names.unique(from_prompt, self._name_taken)
        base = wt.slugify(agent.split()[0].rsplit("/", 1)[-1]) or "session"
        n = 1
        while self.store.name_taken(f"{base}-{n}") or f"{base}-{n}" in self._reserved:
            n += 1
        return f"{base}-{n}"

    def rename(self, s: Session, name: str) -> None:
        """A new display name (the branch keeps its name: it may be pushed or checked out)."""
        name = wt.validate_name(name.strip())
        if name == s.name:
            return
        if self._name_taken(name):
            raise UsageError(f"a session named {name!r} already exists", hint="pick another name")
        old, s.name = s.name, name
        self.store.save_session(s)
        self.record(s, "renamed", {"from": old, "to": name})
        self.publish_session(s)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background; cancelled when the daemon shuts down."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, s: Session, cfg: Config, first: bool) -> None:
        try:
            if first and not s.in_place and cfg.worktree.setup:
                self.set_state(s, SessionState.STARTING, "running set-up command")
                await self._run_setup(s, cfg)
            await self.launch(s, cfg, resume=not first)
        except WorkbenchError as e:
            self.set_state(s, SessionState.ERROR, str(e))
        except Exception as e:  # a bug must not take the daemon down
            log.exception("starting session %s failed", s.id)
            self.set_state(s, SessionState.ERROR, f"internal error while starting: {e}")

    async def _run_setup(self, s: Session, cfg: Config) -> None:
        setup = cfg.worktree.setup
        cfg.require_sandboxed("worktree.setup", s.sandbox)
        argv = ["/bin/sh", "-c", setup] if isinstance(setup, str) else list(setup or [])
        cmd = self.sandboxed(s, argv, new_session=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv,
                cwd=s.worktree,
                env=cmd.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=cmd.pass_fds,
            )
        finally:
            cmd.close()
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 900)
        except TimeoutError:
            proc.kill()
            raise WorkbenchError("set-up command timed out after 900 s") from None
        text = out.decode(errors="replace")
        self.record(s, "setup", {"exit_code": proc.returncode, "output": text[-4000:]})
        if proc.returncode != 0:
            tail = text.strip().splitlines()[-1:] or [""]
            raise WorkbenchError(f"set-up command failed (exit {proc.returncode}): {tail[0][:200]}")

    async def resume(self, s: Session) -> None:
        """Launch `s` again after a daemon restart (an extension's `after_recover`); a failure
        puts the session in `error` with the reason instead of stopping the others."""
        try:
            await self.launch(s, resume=True)
        except WorkbenchError as e:
            self.set_state(s, SessionState.ERROR, f"could not resume: {e}")
        except Exception as e:
            log.exception("resuming session %s failed", s.id)
            self.set_state(s, SessionState.ERROR, f"internal error while resuming: {e}")

    async def launch(self, s: Session, cfg: Config | None = None, *, resume: bool = False) -> None:
        cfg = cfg or config_mod.load(Path(s.repo) if Path(s.repo).is_dir() else None)
        launcher = self.launcher_for(s.agent)
        if launcher is not None:
            await launcher(s, cfg, resume)
            return
        spec = None
        for ext in self.extensions:
            spec = ext.resolve_command(s, cfg, resume)
            if spec is not None:
                break
        if spec is None:
            spec = LaunchSpec(argv=s.command or resolve_command(s.agent))
        argv = spec.argv
        if not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}; remove the session with `workbench rm`")
        cmd = self.sandboxed(s, argv, spec)
        rt = PtyRuntime(
            s.id,
            self.hub,
            cmd.argv,
            cwd=Path(s.worktree),
            env=cmd.env,
            cols=s.cols,
            rows=s.rows,
            scrollback_lines=cfg.session.scrollback_lines,
            pass_fds=cmd.pass_fds,
            on_exit=lambda r: self._pty_exited(s, r),
            on_screen_event=lambda e: self._screen_event(s, e),
            on_output=lambda: self._notify_observers(s, "on_output"),
        )
        try:
            rt.start()
        finally:
            cmd.close()
        self.runtimes[s.id] = rt
        self._observers[s.id] = [obs for ext in self.extensions if (obs := ext.observe(s, rt, cfg)) is not None]
        s.pid = rt.proc.pid
        s.exit_code = None
        if s.pid:
            s.extra["pid_start"] = process_start_time(s.pid)
        self.set_state(s, SessionState.RUNNING, "", pid=s.pid, argv=argv)

    def sandboxed(
        self, s: Session, argv: list[str], spec: LaunchSpec | None = None, *, new_session: bool = False
    ) -> Any:
        """Wrap argv in the session's sandbox; `new_session` for commands without a terminal."""
        return sandbox_command(self, s, argv, spec, new_session=new_session)

    def _notify_observers(self, s: Session, hook: str, *args: Any) -> None:
        for obs in self._observers.get(s.id, ()):
            fn = getattr(obs, hook, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # an observer bug must not break the session
                log.exception("observer %s.%s failed for %s", type(obs).__name__, hook, s.id)

    def require_sandbox(self, mode: str) -> None:
        from workbench.core import sandbox_probe

        sandbox_probe.require(mode)

    def _screen_event(self, s: Session, ev: ScreenEvent) -> None:
        if ev.kind in ("title", "notify", "bell"):
            self.record(s, ev.kind, {"value": ev.value[:500]})
        self._notify_observers(s, "on_screen_event", ev)

    def _pty_exited(self, s: Session, rt: PtyRuntime) -> None:
        code = rt.proc.exit_code
        s.exit_code = code
        s.pid = None
        reason = s.extra.pop("stop_reason", None) or f"process exited with code {code}"
        self._notify_observers(s, "on_exit")
        self._observers.pop(s.id, None)
        self.set_state(s, SessionState.STOPPED, reason, exit_code=code)

    # actions

    def runtime(self, s: Session) -> Any:
        rt = self.runtimes.get(s.id)
        if rt is None or not getattr(rt, "alive", False):
            raise WorkbenchError(
                f"session {s.name} is not running ({s.state})", hint=f"`workbench restart {s.id}`"
            )
        return rt

    def pty(self, s: Session) -> PtyRuntime:
        rt = self.runtime(s)
        if not isinstance(rt, PtyRuntime):
            raise UsageError(f"session {s.name} has no terminal (agent {s.agent})")
        return rt

    def send_to_pty(self, s: Session, text: str) -> int:
        """Type a message into a PTY agent's input and press Enter (bracketed paste if multi-line)."""
        rt = self.pty(s)
        body = text.replace("\r\n", "\n")
        if "\n" in body and rt.screen.bracketed_paste:
            data = b"\x1b[200~" + body.encode() + b"\x1b[201~"
        else:
            data = body.replace("\n", "\r").encode()
        rt.write(data)
        # Many TUIs treat Enter arriving with the paste as part of it; send it separately.
        asyncio.get_running_loop().call_later(0.05, rt.write, b"\r")
        self.record(s, "send", {"text": text[:2000]})
        return len(data) + 1

    async def deliver(self, s: Session, text: str) -> str:
        """The service features use to talk to a session's agent (review, check): the agent's
        extension takes it (`Extension.deliver`), or it is typed into the PTY. Returns how."""
        for ext in self.extensions:
            how = await ext.deliver(s, text)
            if how is not None:
                return how
        program = Path(s.command[0]).name if s.command else ""
        if s.agent == "shell" or program in _SHELLS:
            # Typed into a plain shell, feedback would run as commands (`send` still types:
            # there the person chose the words).
            raise UsageError(
                f"session {s.name} runs a shell, not an agent: the message was not typed into it "
                "(a shell would run it as commands)",
                hint=f"read it with `workbench review {s.id}` and act on it yourself",
            )
        self.send_to_pty(s, text)
        return "typed"

    def answer_pty(self, s: Session, action: str, text: str | None = None) -> None:
        for ext in self.extensions:
            if ext.answer_pty(s, action, text):
                self.record(s, "approval", {"decision": action, "reason": text or ""})
                return
        raise UsageError(f"session {s.name} has no pending approval that workbench can answer",
                         hint=f"attach with `workbench attach {s.id}` or type with `workbench keys`")

    def screen_of(self, s: Session) -> Any:
        rt = self.runtimes.get(s.id)
        screen = getattr(rt, "screen", None)
        if screen is None:
            raise WorkbenchError(f"session {s.name} has no screen yet ({s.state}: {s.reason})")
        return screen

    async def stop(self, s: Session, reason: str = "stopped by user") -> None:
        rt = self.runtimes.get(s.id)
        if rt is None or not getattr(rt, "alive", False):
            if s.state != SessionState.STOPPED:
                self.set_state(s, SessionState.STOPPED, reason)
            return
        s.extra["stop_reason"] = reason
        await rt.stop()
        if s.state != SessionState.STOPPED:
            self.set_state(s, SessionState.STOPPED, reason)

    async def restart(self, s: Session) -> None:
        if s.in_place:
            if not Path(s.worktree).is_dir():
                raise WorkbenchError(f"the checkout {s.worktree} no longer exists")
        elif not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}; it cannot be restarted, only removed")
        rt = self.runtimes.get(s.id)
        if rt is not None and getattr(rt, "alive", False):
            await self.stop(s, "restarting")
        old = self.runtimes.pop(s.id, None)
        if old is not None and hasattr(old, "close"):
            old.close()
        self.record(s, "restart", {})
        await self._start(s, config_mod.load(Path(s.repo) if Path(s.repo).is_dir() else None), first=False)

    async def remove(self, s: Session, keep_branch: bool) -> None:
        await self.stop(s, "removed")
        rt = self.runtimes.pop(s.id, None)
        if rt is not None and hasattr(rt, "close"):
            rt.close()
        if not s.in_place:
            if keep_branch:
                await self._snapshot_quietly(s)
                await asyncio.to_thread(_keep_branch, s)
            await asyncio.to_thread(self.git.close, s.id)
            await asyncio.to_thread(session_repo.remove, Path(s.repo), Path(s.worktree), s.id)
            self.git.forget(s.id)
        home = paths.data_dir() / "homes" / s.id
        if home.exists():
            await asyncio.to_thread(shutil.rmtree, home, True)
        forget(s.id)
        self.record(s, "removed", {"keep_branch": keep_branch})
        self.store.mark_removed(s.id)
        self.store.set_approval(s.id, None)
        del self.sessions[s.id]
        self.disk.forget(s.id)
        self.bus.publish(SessionRemoved(s))
        for ext in self.extensions:
            ext.on_remove(s)

    @property
    def git(self) -> SessionGit:
        """The one way into sessions' repositories (helpers in their sandboxes)."""
        if self._git is None:
            self._git = SessionGit(self)
        return self._git

    async def _snapshot_quietly(self, s: Session) -> None:
        """Import the worktree's last state (for `--keep-branch`); the last import stands if not."""
        try:
            await self.git.snapshot(s)
        except WorkbenchError as e:
            log.warning("snapshot of %s before removal failed: %s", s.id, e)

    async def gc(self) -> list[str]:
        """Remove worktree directories that no live session owns; prune git's records."""
        live = {Path(s.worktree) for s in self.sessions.values()}
        removed: list[str] = []
        root = paths.worktrees_dir()
        repos = {Path(s.repo) for s in self.sessions.values()}
        for _sid, path in self.store.removed_worktrees():
            p = Path(path)
            if p.exists() and p not in live and p.is_relative_to(root):
                await asyncio.to_thread(shutil.rmtree, p, True)
                removed.append(str(p))
        if root.is_dir():
            for p in root.iterdir():
                if p not in live and p.is_dir():
                    await asyncio.to_thread(shutil.rmtree, p, True)
                    removed.append(str(p))
        for repo in repos:
            await asyncio.to_thread(wt.prune, repo)
        return sorted(set(removed))

    async def shutdown(self) -> None:
        for s in list(self.sessions.values()):
            rt = self.runtimes.get(s.id)
            if rt is not None and getattr(rt, "alive", False):
                with contextlib.suppress(Exception):
                    await self.stop(s, "daemon stopped; `workbench restart` resumes it")
        for t in list(self._tasks):
            t.cancel()
        for ext in self.extensions:
            ext.on_shutdown()


def _keep_branch(s: Session) -> None:
    """`rm --keep-branch`: the last imported state becomes a branch of the user's repo
    (never overwriting one that exists); the worktree itself is not read."""
    repo = Path(s.repo)
    if not repo.is_dir():
        return
    sha = session_repo.resolve(repo, session_repo.ref(s.id, "snapshot")) or s.base_commit
    proc = run_git(repo, ["update-ref", f"refs/heads/{s.branch}", sha, ""], check=False)
    if proc.returncode != 0:
        log.warning("keeping branch %s of session %s failed: %s", s.branch, s.id, stderr_text(proc))
