"""Watch a worktree for file changes and call back, debounced.

Linux inotify through ctypes (no dependency): one inotify instance for the whole daemon
(the per-user instance limit is small), one watch per directory. Directories git ignores
and a few well-known build/cache directories are not watched; changes there do not
change the diff. When inotify is unavailable or out of watches, the tree is polled
(stat of every file) instead.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

WATCH_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
)
_EVENT = struct.Struct("iIII")

# Never watched: git's own directory and caches that are (almost) always ignored.
SKIP_NAMES = frozenset({
    ".git", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".tox", ".venv", ".hypothesis",
})


_EMPTY_GITDIR: list[str] = []


def _empty_gitdir() -> str:
    """A bare repository of our own, so git reads no config of the session's (which it can
    write); only the .gitignore files, as patterns."""
    if not _EMPTY_GITDIR:
        d = tempfile.mkdtemp(prefix="wb-ignore-")
        subprocess.run(["git", "init", "--quiet", "--bare", "--template=", d], capture_output=True, check=True)
        atexit.register(shutil.rmtree, d, True)
        _EMPTY_GITDIR.append(d)
    return _EMPTY_GITDIR[0]


def ignored_dirs(root: Path) -> set[str]:
    """Directories (relative, no trailing slash) that the .gitignore files under `root` ignore."""
    try:
        gitdir = _empty_gitdir()
        proc = subprocess.run(
            # Only the .gitignore files: a user's global excludes may ignore more than the
            # snapshot inside the sandbox does, and an unwatched directory there would be
            # a change never seen.
            ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
             "-c", "core.excludesFile=/dev/null", "--git-dir", gitdir,
             "--work-tree", str(root), "ls-files", "--others", "--ignored", "--exclude-standard",
             "--directory", "-z"],
            cwd=root, capture_output=True, stdin=subprocess.DEVNULL, timeout=30, check=False,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
                 "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"},
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    if proc.returncode != 0:
        return set()
    out = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {p.rstrip("/") for p in out if p.endswith("/")}


class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self.lib.inotify_init1.argtypes = [ctypes.c_int]
        self.lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


class Inotify:
    """One inotify descriptor shared by every TreeWatcher of an event loop."""

    _instances: dict[int, Inotify] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.libc = _Libc().lib
        fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self.owners: dict[int, tuple[TreeWatcher, str]] = {}  # wd -> (watcher, relative dir)
        loop.add_reader(fd, self._readable)

    @classmethod
    def shared(cls, loop: asyncio.AbstractEventLoop) -> Inotify:
        for key, old in list(cls._instances.items()):
            if old.loop.is_closed():  # a finished event loop's descriptor
                old.fd, fd = -1, old.fd
                if fd >= 0:
                    os.close(fd)
                del cls._instances[key]
        inst = cls._instances.get(id(loop))
        if inst is None or inst.loop is not loop or inst.fd < 0:
            inst = cls(loop)
            cls._instances[id(loop)] = inst
        return inst

    def add(self, watcher: TreeWatcher, path: Path, rel: str) -> int:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
        self.owners[wd] = (watcher, rel)
        return int(wd)

    def remove(self, wd: int) -> None:
        if self.owners.pop(wd, None) is not None and self.fd >= 0:
            self.libc.inotify_rm_watch(self.fd, wd)

    def read_pending(self) -> None:
        while self._readable():
            pass

    def _readable(self) -> bool:
        try:
            data = os.read(self.fd, 256 * 1024)
        except BlockingIOError:
            return False
        except OSError:
            log.exception("reading inotify events failed")
            return False
        touched: set[TreeWatcher] = set()
        pos = 0
        while pos + _EVENT.size <= len(data):
            wd, mask, _cookie, size = _EVENT.unpack_from(data, pos)
            name = data[pos + _EVENT.size : pos + _EVENT.size + size].rstrip(b"\0")
            pos += _EVENT.size + size
            if mask & IN_Q_OVERFLOW:
                # Events were lost: every tree may have changed.
                for w, _ in list(self.owners.values()):
                    w.overflowed = True
                    touched.add(w)
                continue
            owner = self.owners.get(wd)
            if owner is None:
                continue
            watcher, rel = owner
            if mask & IN_IGNORED:
                self.owners.pop(wd, None)
                watcher.wds.discard(wd)
                continue
            text = os.fsdecode(name)
            if not rel and watcher.top is not None and text not in watcher.top:
                continue
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and text:
                watcher.add_tree(f"{rel}/{text}" if rel else text)
            if text in SKIP_NAMES:
                continue
            if text in watcher.rules:
                watcher.rules_changed = True
            touched.add(watcher)
        for w in touched:
            w.poke()
        return bool(data)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
            self.owners.clear()


class TreeWatcher:
    """Calls `on_change()` on the event loop after files under `root` change.

    Debounced: `quiet` seconds after the last event, but never later than `max_delay`
    seconds after the first one, so a steady stream of writes still reports.

    `changes` counts the changes seen, at once (not debounced), after `flush()` has read
    the events already queued: equal counts mean no change in between, as long as the
    watcher is `complete` (inotify, nothing unwatched that git would not ignore, the
    ignore rules unchanged since the start: a change to a file named in `rules` clears
    it). `top`, when given, limits the watch to these names directly under the root.
    """

    def __init__(
        self,
        root: Path,
        on_change: Callable[[], None],
        *,
        quiet: float = 0.1,
        max_delay: float = 0.4,
        poll_interval: float = 1.0,
        skip: Iterable[str] = (),
        use_inotify: bool = True,
        top: Iterable[str] | None = None,
        rules: Iterable[str] = (".gitignore",),
    ) -> None:
        self.root = Path(root)
        self.on_change = on_change
        self.quiet = quiet
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.skip = set(skip)  # relative directory paths
        self.use_inotify = use_inotify
        self.top = frozenset(top) if top is not None else None
        self.rules = frozenset(rules)
        self.changes = 0
        self.blind = False  # a directory is skipped by name that git may not ignore
        self.rules_changed = False
        self.mode = "off"
        self.wds: set[int] = set()
        self.overflowed = False
        self._ino: Inotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.use_inotify:
            try:
                self._ino = Inotify.shared(self._loop)
                # The first walk may be long (big trees): off the loop. Events that arrive
                # meanwhile wait in the descriptor.
                await asyncio.to_thread(self._add_tree_sync, "")
                if self._closed:
                    self.close()
                    return
                self.mode = "inotify"
                return
            except OSError as e:
                level = logging.WARNING if e.errno in (errno.ENOSPC, errno.EMFILE) else logging.INFO
                log.log(level, "inotify unavailable for %s (%s); polling instead", self.root, e)
                self._drop_watches()
        self.mode = "poll"
        first = await asyncio.to_thread(self._fingerprint)
        self._poll_task = self._loop.create_task(self._poll(first))

    def _skipped(self, rel: str, name: str) -> bool:
        if self.top is not None and "/" not in rel:
            return rel not in self.top
        if rel in self.skip:
            return True
        if name in SKIP_NAMES:
            # Not ignored by git, so in the diff: only the worktree's own .git is known
            # to be watched elsewhere (or not to matter).
            self.blind = self.blind or rel != ".git"
            return True
        return False

    @property
    def complete(self) -> bool:
        return self.mode == "inotify" and not self.blind and not self.rules_changed

    def flush(self) -> None:
        """Take in the events already queued (those of every write finished before now)."""
        if self._ino is not None and self.mode == "inotify":
            self._ino.read_pending()

    def _add_tree_sync(self, rel: str) -> None:
        assert self._ino is not None
        stack = [rel]
        while stack:
            cur = stack.pop()
            path = self.root / cur if cur else self.root
            try:
                self.wds.add(self._ino.add(self, path, cur))
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                    continue  # gone already, or not ours to read
                raise
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for ent in entries:
                if not ent.is_dir(follow_symlinks=False):
                    continue
                sub = f"{cur}/{ent.name}" if cur else ent.name
                if not self._skipped(sub, ent.name):
                    stack.append(sub)

    def add_tree(self, rel: str) -> None:
        """A directory appeared (on the loop): watch it and what is already inside."""
        if self._closed or self._ino is None or self._skipped(rel, rel.rsplit("/", 1)[-1]):
            return
        try:
            self._add_tree_sync(rel)
        except OSError as e:
            log.warning("cannot watch %s/%s (%s); switching to polling", self.root, rel, e)
            self._drop_watches()
            self.mode = "poll"
            if self._loop is not None:
                self._poll_task = self._loop.create_task(self._poll(None))

    def poke(self) -> None:
        """Something changed: schedule the debounced callback."""
        if self._closed or self._loop is None:
            return
        self.changes += 1
        now = self._loop.time()
        if self._first is None:
            self._first = now
        if self._timer is not None:
            self._timer.cancel()
        delay = min(self.quiet, max(0.0, self._first + self.max_delay - now))
        self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._first = None
        if self._closed:
            return
        try:
            self.on_change()
        except Exception:
            log.exception("watch callback failed for %s", self.root)

    async def _poll(self, last: int | None) -> None:
        if last is None:
            last = await asyncio.to_thread(self._fingerprint)
        cost = 0.0
        while not self._closed:
            # A big tree is walked less often: at most a tenth of the time goes to polling.
            await asyncio.sleep(max(self.poll_interval, 10 * cost))
            t0 = time.monotonic()
            cur = await asyncio.to_thread(self._fingerprint)
            cost = time.monotonic() - t0
            if cur != last:
                last = cur
                self.poke()

    def _fingerprint(self) -> int:
        items: list[tuple[str, int, int, int]] = []
        stack = [""]
        while stack:
            cur = stack.pop()
            try:
                entries = list(os.scandir(self.root / cur if cur else self.root))
            except OSError:
                continue
            for ent in entries:
                sub = f"{cur}/{ent.name}" if cur else ent.name
                try:
                    st = ent.stat(follow_symlinks=False)
                except OSError:
                    continue
                if ent.is_dir(follow_symlinks=False):
                    if not self._skipped(sub, ent.name):
                        stack.append(sub)
                        items.append((sub + "/", 0, 0, st.st_mode))
                    continue
                items.append((sub, st.st_mtime_ns, st.st_size, st.st_mode))
        return hash(tuple(sorted(items)))

    def _drop_watches(self) -> None:
        if self._ino is not None:
            for wd in list(self.wds):
                self._ino.remove(wd)
        self.wds.clear()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
        self._drop_watches()
        self.mode = "off"
