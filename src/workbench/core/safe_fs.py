"""Reads and writes in session-writable directories that never follow a link.

A session can replace any file or directory in its home or worktree with a symlink to
a host path. Host code that writes there by path (`Path.write_text`, `mkdir(parents=
True)`, `shutil.copy2`) would then write through the link, as the daemon's user. Every
helper here walks from a root directory fd one component at a time with
`O_NOFOLLOW | O_DIRECTORY` (`dir_fd=`), so a symlink at any component below the root
is refused with `UnsafePathError` instead of followed. The root itself is host-owned
(e.g. `<data>/homes/<id>`) and may be reached through links the user made.

Files are written to a temporary name in the final directory and renamed over the
target: rename replaces a planted symlink itself rather than writing through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from workbench.errors import WorkbenchError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(WorkbenchError):
    """A path under a session-writable root is a symlink or not what it must be."""

    code = "unsafe_path"


def _parts(rel: str | os.PathLike[str]) -> list[str]:
    p = PurePosixPath(os.fspath(rel))
    if p.is_absolute():
        raise UnsafePathError(f"{p}: expected a path relative to the session directory")
    parts = [c for c in p.parts if c not in ("", ".")]
    if any(c == ".." for c in parts):
        raise UnsafePathError(f"{p}: '..' is not allowed here")
    return parts


def _open_dir_at(parent: int, name: str, where: str, *, create: bool, mode: int) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=parent)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(
                f"{where}: is a symlink or not a directory; refusing to follow it",
                hint="the session replaced it; remove it (or the session) and start again",
            ) from None
        raise


@contextlib.contextmanager
def open_dir(root: Path, rel: str | os.PathLike[str] = "", *, create: bool = False,
             mode: int = 0o700) -> Iterator[int]:
    """A directory fd for `root/rel`, no component of `rel` followed if it is a link.

    With `create`, missing directories are made (with `mode`). The fd is closed on exit.
    """
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        where = root
        for name in _parts(rel):
            where = where / name
            nxt = _open_dir_at(fd, name, str(where), create=create, mode=mode)
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def makedirs(root: Path, rel: str | os.PathLike[str], mode: int = 0o700) -> None:
    """`mkdir -p root/rel` refusing links at every component below `root`."""
    with open_dir(root, rel, create=True, mode=mode):
        pass


def _split(rel: str | os.PathLike[str]) -> tuple[str, str]:
    parts = _parts(rel)
    if not parts:
        raise UnsafePathError(f"{rel}: names no file")
    return "/".join(parts[:-1]), parts[-1]


def write_bytes(root: Path, rel: str | os.PathLike[str], data: bytes, *, mode: int = 0o600,
                replace: bool = True, dir_mode: int = 0o700) -> bool:
    """Write `data` to `root/rel` atomically; parents are created.

    With `replace` off, returns False (writing nothing) if anything, a link included, is
    at the final name. With it on, a file or link there is replaced by rename, never
    written through; a directory there is refused.
    """
    parent_rel, name = _split(rel)
    with open_dir(root, parent_rel, create=True, mode=dir_mode) as dfd:
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not replace:
                return False
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"{root / rel}: is a directory; refusing to replace it")
        tmp = f".{name}.wb-{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)  # O_CREAT's mode is masked by the umask
                f.write(data)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    return True


def write_text(root: Path, rel: str | os.PathLike[str], text: str, **kw: object) -> bool:
    return write_bytes(root, rel, text.encode("utf-8"), **kw)  # type: ignore[arg-type]


def copy_file_in(src: Path, root: Path, rel: str | os.PathLike[str], *,
                 replace: bool = False) -> bool:
    """Copy the host file `src` (read normally: the caller trusts it) to `root/rel`.

    Keeps the permission bits. Returns False when the target exists and `replace` is off.
    """
    data = src.read_bytes()
    mode = stat.S_IMODE(src.stat().st_mode)
    return write_bytes(root, rel, data, mode=mode, replace=replace, dir_mode=0o755)


def symlink(root: Path, rel: str | os.PathLike[str], target: str) -> bool:
    """Create the link `root/rel` -> `target` unless something is there already."""
    parent_rel, name = _split(rel)
    with open_dir(root, parent_rel, create=True) as dfd:
        try:
            os.symlink(target, name, dir_fd=dfd)
        except FileExistsError:
            return False
    return True


def exists(root: Path, rel: str | os.PathLike[str]) -> bool:
    """Whether `root/rel` exists (a link counts as existing), without following links."""
    parent_rel, name = _split(rel)
    try:
        with open_dir(root, parent_rel) as dfd:
            os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except (FileNotFoundError, UnsafePathError):
        return False
    return True



def read_bytes(root: Path, rel: str | os.PathLike[str], limit: int) -> bytes:
    """The regular file `root/rel`, no component followed if it is a link; at most `limit`
    bytes. A FIFO or device planted there is refused (opened non-blocking, never read),
    as is a file over `limit`. FileNotFoundError when nothing is there."""
    parent_rel, name = _split(rel)
    with open_dir(root, parent_rel) as dfd:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePathError(f"{root / rel}: is a symlink; refusing to follow it") from None
            raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{root / rel}: not a regular file")
        if st.st_size > limit:
            raise UnsafePathError(f"{root / rel}: over {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            # Sized by the file, not the limit: read(n) allocates n bytes before reading.
            return f.read(st.st_size + 1)[:limit]
    finally:
        os.close(fd)
