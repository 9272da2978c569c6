"""Daemon extension: external agent CLIs (profiles) as PTY sessions.

Its hooks (daemon/extensions.py): a command resolver (profile -> sandboxed command line),
an attention observer per PTY session, an answerer for `approve`/`deny`; and the socket
methods `notify`, `auto_answer`, `attention` and `profiles`. Profile sessions that were
live when the daemon died are resumed with the profile's resume command once it is back.

The notify channel: each profile session gets a FIFO in the daemon's private runtime
directory, bound into the sandbox at NOTIFY_PATH. The daemon reads it and accepts one
short event a line (see attention_screen.EVENTS) for that session only; everything else is
dropped. It is the only way from inside a sandbox back to the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import paths, profiles
from workbench.config import Config
from workbench.core.keys import decode_escapes
from workbench.core.models import Session, SessionState
from workbench.daemon.api import method
from workbench.daemon.attention import AttentionObserver
from workbench.daemon.extensions import Extension
from workbench.daemon.hub import Client
from workbench.daemon.pty_runtime import PtyRuntime
from workbench.daemon.sandboxing import LaunchSpec
from workbench.daemon.session_create import resolve_shell
from workbench.daemon.sessions import SessionManager
from workbench.errors import UsageError, WorkbenchError
from workbench.profiles import Profile, integrations
from workbench.protocol import session as proto

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

NOTIFY_PATH = "/run/workbench-notify"  # where the channel appears inside a sandbox
MAX_LINE = 64 * 1024
MAX_EVENTS_PER_S = 20
ANSWER_SETTLE_S = 0.6  # the screen's quiet time before an approval's keys are typed
_CODEX_TYPE = re.compile(r'"type"\s*:\s*"([A-Za-z_-]{1,40})"')

# Plain command lines (`--agent "python bot.py"`): only notifications count.
COMMAND_PROFILE = Profile(name="command", description="a command line", detect_silence=False,
                          notify_done=profiles.builtin_profiles()["shell"].notify_done, builtin=False)


class NotifyChannel:
    """A per-session FIFO read by the daemon, written by the CLI's hooks."""

    def __init__(self, ext: ProfilesExt, session_id: str) -> None:
        self.ext = ext
        self.session_id = session_id
        self.dir = paths.ensure_private_dir(paths.runtime_dir() / "notify")
        self.path = self.dir / f"{session_id}.fifo"
        self._rfd = -1
        self._wfd = -1
        self._buf = b""
        self._overflow = False
        self._window = (0.0, 0)
        self.dropped = 0

    def open(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.mkfifo(self.path, 0o600)
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid != os.getuid():
            os.close(fd)
            raise WorkbenchError(f"notify channel {self.path} is not our FIFO")
        self._rfd = fd
        # Our own writer keeps the FIFO from reporting EOF each time a hook closes it.
        self._wfd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        asyncio.get_running_loop().add_reader(self._rfd, self._readable)

    def close(self) -> None:
        if self._rfd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._rfd)
            for fd in (self._rfd, self._wfd):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._rfd = self._wfd = -1
        self._buf = b""

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _readable(self) -> None:
        try:
            data = os.read(self._rfd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            log.warning("notify channel of %s: %s", self.session_id, e)
            self.close()
            return
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            if self._overflow:
                self._overflow = False
                continue
            self._line(line)
        if len(self._buf) > MAX_LINE:
            # Keep the head: a Codex event names its type near the start.
            self._line(self._buf[:MAX_LINE])
            self._buf = b""
            self._overflow = True

    def _line(self, raw: bytes) -> None:
        now = time.monotonic()
        start, count = self._window
        if now - start >= 1.0:
            start, count = now, 0
        if count >= MAX_EVENTS_PER_S:
            self.dropped += 1
            return
        self._window = (start, count + 1)
        text = raw.decode("utf-8", "replace").strip()
        if text:
            self.ext.channel_line(self.session_id, text)


def parse_line(text: str) -> tuple[str, str]:
    """A channel line -> (event, detail). `codex {json}` lines carry Codex's notify payload."""
    head, _, rest = text.partition(" ")
    if head == "codex":
        m = _CODEX_TYPE.search(rest)
        if not m:
            raise ValueError("codex notify payload without a type")
        return m.group(1), "codex"
    return head, rest.strip()


class ProfilesExt(Extension):
    def __init__(self, manager: SessionManager) -> None:
        self.m = manager
        self.observers: dict[str, AttentionObserver] = {}
        self.channels: dict[str, NotifyChannel] = {}
        self.profiles: dict[str, Profile] = {}

    # session hooks

    def profile_for(self, s: Session, cfg: Config | None = None) -> Profile:
        if s.id in self.profiles:
            return self.profiles[s.id]
        from workbench import config as config_mod

        cfg = cfg or config_mod.load(Path(s.repo) if Path(s.repo).is_dir() else None)
        return profiles.resolve(s.agent, cfg) or COMMAND_PROFILE

    def resolve_command(self, s: Session, cfg: Config, resume: bool) -> LaunchSpec | None:
        prof = profiles.resolve(s.agent, cfg)
        if prof is None or (prof.name == "shell" and "shell" not in cfg.profiles):
            return None
        exe = prof.executable
        if exe is not None and shutil.which(exe) is None and not os.path.isfile(exe):
            hint = f"install it: {prof.install_hint}" if prof.install_hint else \
                f"set [profiles.{prof.name}] command in config.toml"
            raise UsageError(f"agent {prof.name!r} needs `{exe}`, which is not on PATH", hint=hint)
        if s.id == "probe":  # creation only asks whether the name is valid
            return LaunchSpec(argv=list(prof.command) or [resolve_shell()])
        from workbench.daemon.sandboxing import session_home

        self.profiles[s.id] = prof
        chan = self.channels.get(s.id) or NotifyChannel(self, s.id)
        chan.open()
        self.channels[s.id] = chan
        notify_path = str(chan.path) if s.sandbox == "off" else NOTIFY_PATH
        prep = integrations.prepare(prof, s, resume=resume, home=session_home(s),
                                    notify_path=notify_path, shell=resolve_shell() if not prof.command else None)
        rw = [] if s.sandbox == "off" else [f"{chan.path}:{NOTIFY_PATH}"]
        return LaunchSpec(argv=prep.argv, env=prep.env, ro_binds=prep.ro_binds, rw_binds=rw,
                          pass_env=prep.pass_env, network=prof.network or None)

    def observe(self, s: Session, rt: PtyRuntime, cfg: Config) -> AttentionObserver:
        prof = self.profile_for(s, cfg)
        obs = AttentionObserver(self.m, s, rt, prof)
        old = self.observers.get(s.id)
        if old is not None:
            old.on_exit()
        self.observers[s.id] = obs
        return obs

    def answer_pty(self, s: Session, action: str, text: str | None) -> bool:
        obs = self.observers.get(s.id)
        if obs is None or obs.closed:
            return False
        # This session is ours: say why nothing was typed rather than a generic refusal.
        if s.state == SessionState.WAITING and obs.cause == "blocked":
            raise UsageError(f"session {s.name} is not at an approval prompt: {s.reason}",
                             hint=f"attach with `workbench attach {s.id}`")
        if not obs.approval_pending():
            raise UsageError(f"no approval is pending for session {s.name}: the last prompt was answered"
                             if obs.answered_matches is not None or obs.answered_at else
                             f"no approval is pending for session {s.name} ({s.state})")
        keys = obs.p.answers.get(action)
        if not keys:
            known = ", ".join(f"{a}: {k!r}" for a, k in sorted(obs.p.answers.items())) or "none"
            raise UsageError(
                f"profile {obs.p.name!r} has no key for {action} (keys it knows: {known})",
                hint=f"choose it in the CLI's prompt: `workbench attach {s.id}`, or type the key with "
                     f"`workbench keys {s.id} KEYS`; set [profiles.{obs.p.name}] answers in config.toml")
        rt = self.m.pty(s)
        # A hook can announce the prompt before the CLI has drawn it, and a CLI may drop keys
        # that arrive while its dialog is still being drawn (Codex does): type the answer once
        # the screen has been still for ANSWER_SETTLE_S.
        delay = max(0.0, ANSWER_SETTLE_S - (time.monotonic() - rt.last_output))
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._write_quietly, s, decode_escapes(keys))
        if action == "deny" and text:
            # The CLI asks what to do instead once the prompt is closed.
            loop.call_later(delay + 0.3, self._send_quietly, s, text)
        obs.answered(action)
        return True

    def _write_quietly(self, s: Session, data: bytes) -> None:
        with contextlib.suppress(WorkbenchError):
            self.m.pty(s).write(data)

    def _send_quietly(self, s: Session, text: str) -> None:
        with contextlib.suppress(WorkbenchError):
            self.m.send_to_pty(s, text)

    def channel_line(self, sid: str, text: str) -> None:
        s = self.m.sessions.get(sid)
        obs = self.observers.get(sid)
        if s is None or obs is None or obs.closed:
            return
        try:
            event, detail = parse_line(text)
            obs.on_hook(event, detail, source="channel")
        except ValueError as e:
            self.m.record(s, "notify_rejected", {"line": text[:200], "error": str(e)})

    def on_remove(self, s: Session) -> None:
        self.forget(s.id)

    def forget(self, sid: str) -> None:
        obs = self.observers.pop(sid, None)
        if obs is not None:
            obs.on_exit()
        chan = self.channels.pop(sid, None)
        if chan is not None:
            chan.remove()
        self.profiles.pop(sid, None)

    # recovery

    async def after_recover(self, prior: Mapping[str, SessionState]) -> None:
        """Resume, with the profile's resume command, the PTY sessions that were live."""
        for s in list(self.m.sessions.values()):
            if prior.get(s.id) not in (SessionState.STARTING, SessionState.RUNNING,
                                       SessionState.WAITING, SessionState.REVIEW):
                continue
            try:
                prof = self.profile_for(s)
            except WorkbenchError:
                continue
            if prof.resume and (prof.name != "shell") and Path(s.worktree).is_dir():
                self.m.spawn(self._resume(s))

    async def _resume(self, s: Session) -> None:
        self.m.record(s, "resume", {"reason": "daemon restarted"})
        try:
            await self.m.restart(s)
        except WorkbenchError as e:
            self.m.set_state(s, SessionState.ERROR, f"resume after daemon restart failed: {e}")


def _ext(d: Daemon) -> ProfilesExt:
    return d.manager.require_extension(ProfilesExt, "agent profiles")


def setup(daemon: Daemon) -> ProfilesExt:
    return ProfilesExt(daemon.manager)


@method(proto.NOTIFY)
async def notify(d: Daemon, c: Client, p: proto.NotifyParams) -> proto.NotifyResult:
    """A CLI hook (or a user's script) says what the session is doing: `{id, event, detail?}`."""
    ext = _ext(d)
    s = d.manager.get(p["id"])
    obs = ext.observers.get(s.id)
    if obs is None or obs.closed:
        raise UsageError(f"session {s.name} has no running terminal agent ({s.state})")
    try:
        e = obs.on_hook(p["event"], p.get("detail", ""), source="socket")
    except ValueError as err:
        raise UsageError(str(err)) from None
    return {"id": s.id, "event": e, "state": str(s.state)}


@method(proto.AUTO_ANSWER)
async def auto_answer(d: Daemon, c: Client, p: proto.AutoAnswerParams) -> proto.AutoAnswerResult:
    """Turn automatic approval of this session's prompts on or off: `{id, enabled}`."""
    s = d.manager.get(p["id"])
    s.extra["auto_answer"] = p["enabled"]
    d.store.save_session(s)
    d.manager.record(s, "auto_answer_setting", {"enabled": p["enabled"]})
    d.manager.publish_session(s)
    return {"id": s.id, "auto_answer": p["enabled"]}


@method(proto.ATTENTION)
async def attention(d: Daemon, c: Client, p: proto.IdParams) -> proto.AttentionReport:
    """Why a session is in its state: the detector's view, for diagnosing a wrong detection."""
    s = d.manager.get(p["id"])
    obs = _ext(d).observers.get(s.id)
    if obs is None:
        raise UsageError(f"session {s.name} has no terminal agent being watched")
    return obs.diagnose()


@method(proto.PROFILES)
async def list_profiles(d: Daemon, c: Client, p: proto.ProfilesParams) -> list[dict[str, Any]]:
    from workbench import config as config_mod

    repo = p.get("repo")
    cfg = config_mod.load(Path(repo) if repo else None)
    return [prof.summary() for prof in profiles.all_profiles(cfg).values()]
