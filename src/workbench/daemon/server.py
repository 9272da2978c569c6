"""The workbench daemon: an asyncio server on a private Unix socket.

Security: the runtime directory is 0700, the socket 0600, and every peer's uid is checked
with SO_PEERCRED. Only one daemon runs per runtime directory (flock on a lock file).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import logging
import logging.handlers
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from workbench import __version__, paths
from workbench.core import gc_pauses, screen
from workbench.core.escapes import strip_escapes
from workbench.core.pty_feeder import FEEDER
from workbench.core.store import Store
from workbench.daemon import hosts, methods, process_upkeep
from workbench.daemon.api import Router
from workbench.daemon.extensions import EXTENSIONS
from workbench.daemon.hosts import Remotes
from workbench.daemon.hub import Client, Hub
from workbench.daemon.protocol import (
    MAX_LINE,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    error_reply,
)
from workbench.daemon.sessions import SessionManager
from workbench.errors import DaemonError, WorkbenchError

COMPACT_EVERY_S = 5.0
log = logging.getLogger("workbench.daemon")

MAX_INFLIGHT = 32  # concurrent requests per connection


def load_extensions(daemon: Daemon) -> None:
    """Set up every module of EXTENSIONS and register what it returns, in that order."""
    for name in EXTENSIONS:
        mod = importlib.import_module(name)
        daemon.manager.add_extension(mod.setup(daemon))
        daemon.router.add_module(mod)


def peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class Daemon:
    def __init__(self) -> None:
        self.started = time.time()
        self.hub = Hub()
        self.store = Store(paths.database_file())
        self.manager = SessionManager(self.store, self.hub)
        self.server: asyncio.AbstractServer | None = None
        self.stopping = asyncio.Event()
        self.sock_path = paths.socket_path()
        self.lag_ms = 0.0
        self.sandbox_status: dict[str, Any] = {}
        self.router = Router()
        self.router.add_module(methods)
        self.router.add_module(hosts)
        self.remotes = Remotes(self.hub)  # links to remote hosts' daemons (docs/remote.md)
        self._conn_tasks: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Before the socket and the pid file exist: whoever finds them may stop us at once,
        # and must get the orderly stop below, never death by the signal.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stopping.set)
        process_upkeep.watch_children_with_pidfds()
        process_upkeep.limit_arenas()
        load_extensions(self)
        self._probe_sandbox()
        gc_pauses.settle()  # before the sessions: a removed one must stay collectable
        threading.Thread(target=screen.warm, name="warm-screen", daemon=True).start()
        await self.manager.recover()
        with paths.socket_address(self.sock_path) as addr:
            self.server = await asyncio.start_unix_server(self._on_connect, path=addr, limit=MAX_LINE + 1)
        os.chmod(self.sock_path, 0o600)
        paths.pid_file().write_text(f"{os.getpid()}\n")
        self.remotes.reload()
        lag_task = loop.create_task(self._measure_lag())
        trim_task = loop.create_task(process_upkeep.trim_periodically())
        compact_task = loop.create_task(self._compact_quiet_histories())
        log.info("daemon %s listening on %s (pid %d)", __version__, self.sock_path, os.getpid())
        try:
            await self.stopping.wait()
        finally:
            lag_task.cancel()
            trim_task.cancel()
            compact_task.cancel()
            log.info("daemon stopping")
            self.server.close()
            for c in list(self.hub.clients):
                c.close()
            for t in list(self._conn_tasks):
                t.cancel()
            await asyncio.gather(*self._conn_tasks, return_exceptions=True)
            await self.remotes.close()
            await self.manager.shutdown()
            FEEDER.join(2.0)  # its threads end with the last session's PTY
            with contextlib.suppress(FileNotFoundError):
                self.sock_path.unlink()
            with contextlib.suppress(FileNotFoundError):
                paths.pid_file().unlink()
            self.store.close()

    def _probe_sandbox(self) -> None:
        try:
            from workbench.core import sandbox_probe

            res = sandbox_probe.probe()
            self.sandbox_status = {
                "ok": res.ok, "reason": res.reason, "fix": res.fix, "as_root": res.as_root,
                "version": res.version,
            }
            log.info("sandbox: %s", res.describe())
            for w in res.warnings:
                log.warning("sandbox: %s", w)
        except Exception as e:  # the probe must never stop the daemon from serving
            self.sandbox_status = {"ok": False, "reason": f"probe failed: {e}"}

    async def _compact_quiet_histories(self) -> None:
        """Every few seconds, compress the history of sessions whose output has paused.
        In a worker thread (under each screen's own lock): a compaction and the rebuilt
        terminal that follows it take 10-20 ms a screen, which on the loop held back every
        other session's echo."""
        while True:
            await asyncio.sleep(COMPACT_EVERY_S)
            await asyncio.to_thread(self._compact_all, time.monotonic())

    def _compact_all(self, now: float) -> None:
        for rt in list(self.manager.runtimes.values()):
            compact = getattr(rt, "compact_if_quiet", None)
            if compact is None:
                continue
            try:
                compact(now)
            except Exception:  # a screen's trouble must not stop the sweep for the rest
                log.exception("compacting the history of %s failed", getattr(rt, "session_id", "?"))

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.25)
            self.lag_ms = max(0.0, (loop.time() - t0 - 0.25) * 1000)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
            task.add_done_callback(self._conn_tasks.discard)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            with contextlib.suppress(Exception):
                writer.write(encode(error_reply(0, "auth", "permission denied: peer is another user")))
                await writer.drain()
            writer.close()
            return
        client = Client(writer, "client")
        client.task = asyncio.get_running_loop().create_task(client.pump())
        try:
            if not await self._handshake(reader, client):
                return
            self.hub.add(client)
            inflight = asyncio.Semaphore(MAX_INFLIGHT)
            pending: set[asyncio.Task[None]] = set()
            while not client.closed:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    client.send(error_reply(None, "protocol", f"message over {MAX_LINE} bytes"))
                    break
                except ConnectionError:
                    break
                if not line:
                    break
                # Requests run concurrently so a slow one (a check, a merge) never holds up
                # keystrokes on the same connection; tasks start in arrival order, and
                # handlers that write to a PTY do so before their first await.
                await inflight.acquire()
                task = asyncio.get_running_loop().create_task(self._dispatch(client, line))
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(lambda _t: inflight.release())
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            self.hub.remove(client)
            # Let the pump send what is queued (e.g. an error) before closing.
            if client.task is not None and not client.closed:
                client.closed = True
                client.wake.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.task, 1.0)
            client.close()

    async def _handshake(self, reader: asyncio.StreamReader, client: Client) -> bool:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            msg = decode(line)
        except (TimeoutError, ProtocolError, ValueError, asyncio.LimitOverrunError, ConnectionError) as e:
            client.send(error_reply(0, "protocol", f"expected hello: {e}"))
            return False
        params = msg.get("params") or {}
        if msg.get("method") != "hello" or not isinstance(params, dict):
            client.send(error_reply(msg.get("id", 0), "protocol", "the first message must be hello"))
            return False
        if params.get("protocol") != PROTOCOL_VERSION:
            client.send(
                error_reply(
                    msg.get("id", 0),
                    "version",
                    f"protocol mismatch: daemon speaks {PROTOCOL_VERSION}, client {params.get('protocol')}; "
                    "restart the daemon with `workbench daemon stop`",
                )
            )
            return False
        client.name = str(params.get("client", "client"))[:40]
        client.send({"id": msg.get("id", 0), "result": {
            "protocol": PROTOCOL_VERSION, "version": __version__, "pid": os.getpid()}})
        return True

    async def _dispatch(self, client: Client, line: bytes) -> None:
        req_id: Any = None
        try:
            msg = decode(line)
            req_id = msg.get("id")
            result = await self.remotes.dispatch(
                client, msg.get("method"), msg.get("params"),
                lambda name, params: self.router.dispatch(self, client, name, params))
            client.send({"id": req_id, "result": result})
        except WorkbenchError as e:
            client.send(error_reply(req_id, e.code, str(e)))
        except Exception as e:
            log.exception("method failed")
            client.send(error_reply(req_id, "failed", f"internal error: {type(e).__name__}: {e}"))


def _acquire_lock() -> int | None:
    fd = os.open(paths.lock_file(), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class InertLogFormatter(logging.Formatter):
    """Log lines carry session reasons, model text and file names: keep the log file safe
    to `cat` or `tail -f` in a terminal (newlines and tabs of tracebacks stay)."""

    def format(self, record: logging.LogRecord) -> str:
        return strip_escapes(super().format(record))


def _setup_logging() -> None:
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(paths.log_file(), maxBytes=5_000_000, backupCount=3)
    # Session reasons and model text reach the log: keep `tail -f` of it inert.
    handler.setFormatter(InertLogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _clear_stale_socket(path: Path) -> None:
    """We hold the lock, so whatever sits at the socket path is stale (or planted): remove it."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise DaemonError(f"{path} is a directory; remove it and try again")
    path.unlink()


SWITCH_INTERVAL = 0.0005


def run_daemon() -> int:
    """Entry point of `workbench daemon run` (foreground)."""
    paths.ensure_private_dir(paths.runtime_dir())
    lock = _acquire_lock()
    if lock is None:
        return 3  # another daemon is running
    _setup_logging()
    _clear_stale_socket(paths.socket_path())
    os.environ["WORKBENCH_DAEMON"] = "1"
    # The feeder threads give the GIL up in every read and parse, but a thread woken for
    # it (the event loop, with a keystroke) waits for a forced switch when another one
    # takes it back first: 5 ms by default, paid on every loop iteration under load.
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        asyncio.run(Daemon().run())
    except Exception:
        log.exception("daemon crashed")
        return 1
    finally:
        os.close(lock)
    return 0
