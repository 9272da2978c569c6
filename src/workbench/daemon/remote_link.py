"""One remote host's link: a client of that host's daemon over `ssh HOST workbench daemon
connect` (an asyncio subprocess), kept up with exponential backoff (docs/remote.md).

The link follows every session of the host (`subscribe all`) and keeps the last listing,
so `ls` answers from it at once, up or down; it asks for the frames of only the sessions a
local client watches (`frame_ids`). Each (re)connection starts from a fresh listing, so
what changed while the link was down (an approval that arrived meanwhile) shows at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn

from workbench import __version__
from workbench.daemon.protocol import MAX_LINE, PROTOCOL_VERSION, decode, encode, hello, request
from workbench.errors import DaemonError, UsageError, WorkbenchError, from_wire
from workbench.hosts_config import INSTALL_HINT, Host
from workbench.protocol.hosts import HostLink, LinkState

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# ssh's ConnectTimeout, then the remote daemon may have to start (its own 10 s bound)
HANDSHAKE_TIMEOUT_S = 40.0
REQUEST_TIMEOUT_S = 120.0
SLOW_REQUEST_TIMEOUT_S = 900.0  # a merge or a check on a big repository
MAX_NOISE_LINES = 50
UPGRADE = "upgrade workbench on both machines to the same version (`pipx upgrade workbench` on each)"

_PLAIN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def plain_id(value: object) -> bool:
    """A host's session id as this side keeps it: nothing that could be a terminal escape."""
    return isinstance(value, str) and bool(_PLAIN_ID.match(value))


EventSink = Callable[["RemoteLink", dict[str, Any]], None]
StateSink = Callable[["RemoteLink"], None]


class RemoteLink:
    def __init__(self, host: Host, on_event: EventSink, on_state: StateSink) -> None:
        self.host = host
        self.on_event = on_event
        self.on_state = on_state
        self.state: LinkState = "connecting"
        self.error = ""
        self.since = time.time()
        self.attempts = 0
        self.version = ""
        self.sessions: dict[str, dict[str, Any]] = {}  # the host's sessions by their own id
        self.frame_ids: set[str] = set()  # of those, the ones whose frames someone here watches
        self.log_seq: dict[str, int] = {}  # the last log entry seen of each session, to catch up
        self.proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stderr: deque[str] = deque(maxlen=20)
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()  # set while the state is not "connecting"
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._open = False  # the hello was answered: requests may go

    @property
    def name(self) -> str:
        return self.host.name

    def describe(self) -> HostLink:
        return {
            "name": self.name, "url": self.host.url, "state": self.state, "error": self.error,
            "since": self.since, "attempts": self.attempts, "version": self.version,
            "sessions": len(self.sessions), "pid": self.proc.pid if self.proc and self.state != "down" else None,
        }

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"link-{self.name}")

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff (a config reload, or someone asked for the host)."""
        self._wake.set()

    async def close(self) -> None:
        self._closing = True
        self._kill()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self.proc is not None:
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(self.proc.wait(), 5)

    # --- requests ------------------------------------------------------------------------

    async def request(self, method: str, params: dict[str, Any], slow: bool = False) -> Any:
        """One request to the host's daemon. A link still connecting is waited for (bounded);
        one that is down is a clear error at once (and tries again now)."""
        if self.state == "connecting" and not self._open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), HANDSHAKE_TIMEOUT_S + 5)
        if not self._open or self._writer is None:
            if self.state == "down":
                self.reconnect_now()
            why = f": {self.error}" if self.error else ""
            raise DaemonError(f"host {self.name} is {self.state}{why}", hint="see `workbench host ls`")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            self._writer.write(encode(request(req_id, method, params)))
            await self._writer.drain()
            return await asyncio.wait_for(fut, SLOW_REQUEST_TIMEOUT_S if slow else REQUEST_TIMEOUT_S)
        except TimeoutError:
            raise DaemonError(f"host {self.name} did not answer {method} in time") from None
        except (ConnectionError, RuntimeError) as e:
            raise DaemonError(f"lost the link to host {self.name}: {e}") from None
        finally:
            self._pending.pop(req_id, None)

    async def watch_frames(self, ids: set[str]) -> None:
        """Ask the host for the frames of exactly `ids` (changes only)."""
        ids &= set(self.sessions)
        if ids == self.frame_ids:
            return
        self.frame_ids = ids
        if self.state == "up":
            with contextlib.suppress(WorkbenchError):
                await self._subscribe()

    async def _subscribe(self) -> None:
        await self.request("subscribe", {"all": True, "frames": bool(self.frame_ids),
                                         "frame_ids": sorted(self.frame_ids)})

    # --- the connection ------------------------------------------------------------------

    def _set_state(self, state: LinkState, error: str | None = None) -> None:
        if error is not None:
            self.error = error
        if state != self.state or error is not None:
            if state != self.state:
                self.since = time.time()
            self.state = state
            if state == "connecting":
                self._settled.clear()
            else:
                self._settled.set()
            self.on_state(self)

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._connect_and_serve()
                error = self._why_closed("the link closed")
            except WorkbenchError as e:
                error = str(e)
            except (OSError, ValueError) as e:  # ssh missing, a pipe that broke mid-handshake
                error = f"{type(e).__name__}: {e}"
            except Exception as e:  # a bug must not end the link for good: log it, try again
                log.exception("link to %s failed", self.name)
                error = f"internal error: {type(e).__name__}: {e}"
            finally:
                self._kill()
                self._fail_pending()
            if self._closing:
                return
            self.attempts += 1
            log.info("link to %s down: %s", self.name, error)
            self._set_state("down", error)
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(self.attempts - 1, 10))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            # A link that failed stays `down` while it tries again: the true state, which
            # a listing taken between two attempts would otherwise show as `connecting`.

    async def _connect_and_serve(self) -> None:
        self._stderr.clear()
        self.proc = proc = await asyncio.create_subprocess_exec(
            *self.host.ssh_argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=MAX_LINE + 1, start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        err_task = asyncio.get_running_loop().create_task(self._read_stderr(proc.stderr))
        try:
            self._writer = proc.stdin
            proc.stdin.write(encode(hello("link")))
            await proc.stdin.drain()
            try:
                hello_reply = await asyncio.wait_for(self._hello_reply(proc), HANDSHAKE_TIMEOUT_S)
            except TimeoutError:
                raise DaemonError(f"host {self.name} did not answer within {HANDSHAKE_TIMEOUT_S:.0f} s") from None
            self._check_hello(hello_reply)
            reader = asyncio.get_running_loop().create_task(self._read(proc.stdout))
            try:
                self._open = True  # requests may go now: the listing below is one
                # Events first, then the listing (nothing falls between); then the screens
                # still watched of the sessions that still exist.
                await self.request("subscribe", {"all": True})
                self._refresh(await self.request("ls", {}))
                self.frame_ids &= set(self.sessions)
                if self.frame_ids:
                    await self._subscribe()
                await self._catch_up()
                self.attempts = 0
                self._set_state("up", "")
                await reader
            finally:
                reader.cancel()
            with contextlib.suppress(TimeoutError):  # its exit status says why, if it ended
                await asyncio.wait_for(proc.wait(), 2)
        finally:
            self._open = False
            self._writer = None
            err_task.cancel()

    async def _hello_reply(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        """The answer to the hello. Lines that are not JSON before it (a login script that
        prints a banner on stdout) are skipped, a few dozen at most, and quoted if it fails."""
        assert proc.stdout is not None
        noise: list[str] = []
        while len(noise) < MAX_NOISE_LINES:
            line = await proc.stdout.readline()
            if not line:
                await self._exited(proc)
            try:
                return decode(line)
            except WorkbenchError:
                noise.append(line.decode(errors="replace").strip()[:200])
        raise DaemonError(f"host {self.name} did not speak the workbench protocol: {noise[0]!r} ...",
                          hint="does a login script print to stdout?")

    def _check_hello(self, msg: dict[str, Any]) -> None:
        if "error" in msg:
            err = msg["error"] if isinstance(msg["error"], dict) else {}
            text = str(err.get("message", ""))
            if err.get("code") == "version":
                raise DaemonError(f"host {self.name}: this workbench {__version__} speaks protocol "
                                  f"{PROTOCOL_VERSION}; there, {text}; {UPGRADE}")
            raise from_wire(str(err.get("code")), f"host {self.name}: {text}")
        result = msg.get("result") if isinstance(msg.get("result"), dict) else {}
        assert isinstance(result, dict)
        if result.get("protocol") != PROTOCOL_VERSION:
            raise DaemonError(f"host {self.name} runs workbench {result.get('version')} (protocol "
                              f"{result.get('protocol')}), this machine {__version__} (protocol "
                              f"{PROTOCOL_VERSION}); {UPGRADE}")
        self.version = str(result.get("version", ""))

    async def _exited(self, proc: asyncio.subprocess.Process) -> NoReturn:
        """ssh ended before the hello was answered: say why, as precisely as it told us."""
        try:
            code = await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            code = None
        await asyncio.sleep(0)  # let the stderr reader take the last lines
        text = " ".join(self._stderr)
        if code in (126, 127) or "command not found" in text or (
                self.host.workbench in text and "No such file" in text):
            raise DaemonError(f"workbench is not installed on host {self.name} "
                              f"(`{self.host.workbench}`: {self._last_stderr() or f'exit {code}'}): {INSTALL_HINT}")
        raise DaemonError(f"ssh to {self.name} failed (exit {code}): {self._last_stderr() or 'no message'}")

    def _why_closed(self, default: str) -> str:
        code = self.proc.returncode if self.proc else None
        last = self._last_stderr()
        return f"{default} (ssh exit {code}{': ' + last if last else ''})" if code is not None else default

    def _last_stderr(self) -> str:
        return self._stderr[-1] if self._stderr else ""

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(ValueError, ConnectionError):
            while line := await stream.readline():
                text = line.decode(errors="replace").strip()
                if text:
                    self._stderr.append(text[:300])

    async def _read(self, stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(ValueError, ConnectionError, asyncio.IncompleteReadError):
            while line := await stream.readline():
                try:
                    msg = decode(line)
                except WorkbenchError:
                    continue
                if "event" in msg:
                    self._note_event(msg)
                    continue
                fut = self._pending.get(msg.get("id", -1))
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    err = msg["error"] if isinstance(msg["error"], dict) else {}
                    fut.set_exception(from_wire(str(err.get("code")), str(err.get("message"))))
                else:
                    fut.set_result(msg.get("result"))

    def _note_event(self, msg: dict[str, Any]) -> None:
        data = msg.get("data")
        if not isinstance(data, dict):
            return
        if msg["event"] == "session" and isinstance(data.get("id"), str) and plain_id(data["id"]):
            self.sessions[data["id"]] = data
        elif msg["event"] == "log" and isinstance(data.get("seq"), int):
            sid = str(data.get("session"))
            self.log_seq[sid] = max(self.log_seq.get(sid, 0), data["seq"])
        elif msg["event"] == "removed":
            self.log_seq.pop(str(data.get("id")), None)
            self.sessions.pop(str(data.get("id")), None)
            self.frame_ids.discard(str(data.get("id")))
        self.on_event(self, msg)

    def note_answer(self, result: Any) -> None:
        """Keep what an answer says of the host's sessions (a `new` is listed before its
        first event arrives; an `rm` is gone at once)."""
        found = result.get("sessions") if isinstance(result, dict) and "sessions" in result else [result]
        for s in found if isinstance(found, list) else []:
            if isinstance(s, dict) and isinstance(s.get("id"), str):
                if "state" in s:
                    self.sessions[s["id"]] = {k: v for k, v in s.items() if k != "warnings"}
                elif s.get("removed") is True:
                    self.sessions.pop(s["id"], None)

    def _refresh(self, listing: Any) -> None:
        """Replace the kept listing with the host's, telling local clients what changed."""
        fresh = {s["id"]: s for s in listing if isinstance(s, dict) and plain_id(s.get("id"))}
        gone = set(self.sessions) - set(fresh)
        self.sessions = fresh
        for sid in sorted(gone):
            self.on_event(self, {"event": "removed", "data": {"id": sid}})
        for s in fresh.values():
            self.on_event(self, {"event": "session", "data": s})

    async def _catch_up(self) -> None:
        """The log entries written while the link was down, as the `log` events they were
        (for sessions whose log was followed), so a transcript open here misses none."""
        for sid, seq in list(self.log_seq.items()):
            if sid not in self.sessions:
                self.log_seq.pop(sid, None)
                continue
            try:
                entries = await self.request("events", {"id": sid, "after": seq})
            except UsageError:  # removed since the listing: its `removed` event follows
                continue
            for e in entries if isinstance(entries, list) else []:
                if isinstance(e, dict) and isinstance(e.get("seq"), int) and e["seq"] > self.log_seq.get(sid, 0):
                    self._note_event({"event": "log", "data": {"session": sid, **e}})

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DaemonError(f"lost the link to host {self.name}"))
        self._pending.clear()
