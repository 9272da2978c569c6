"""Write a patch's files all-or-nothing, never following a symlink.

Edits are staged in memory and written only once every file's new content is known; a
failed write puts back what was already written. How each path is opened so that no write
can land outside the workspace, even without a sandbox: `Workspace`.
Standard library only: the sandboxed helper imports it (see `patch`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from workbench.agent.patch_parse import ADD, PatchError, check_path


@dataclass
class _Entry:
    content: str | None  # None: delete
    original: bytes | None  # None: did not exist (or was a symlink: see `link`)
    mode: int | None
    link: str | None = None  # the target of a symlink this patch deletes, to restore it


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _symlink_error(path: str, link: str) -> PatchError:
    return PatchError(
        f"path {path!r} goes through the symlink {link!r}; apply_patch does not follow "
        "symlinks (they can lead outside the workspace). Edit the file at its real path"
    )


class Workspace:
    """Stages edits in memory for paths inside `root`, then writes them.

    Paths are checked lexically (`check_path`) and then opened one component at a time,
    each relative to its parent's descriptor with `O_NOFOLLOW`, from a descriptor of the
    root: a symlink anywhere, including one swapped in while the patch applies, is refused
    rather than followed, so no write can land outside the workspace.
    """

    def __init__(self, root: Path, cwd: Path | None, tag: int | None = None) -> None:
        self.tag = os.getpid() if tag is None else tag
        try:
            self.root = Path(os.path.realpath(root))
            if not self.root.is_dir():
                raise PatchError(f"workspace root {str(root)!r} is not a directory")
        except OSError as e:
            raise PatchError(f"workspace root {str(root)!r} is not usable: {e}") from e
        base = Path(os.path.realpath(cwd if cwd is not None else root))
        if base != self.root and self.root not in base.parents:
            raise PatchError(f"working directory {str(cwd)!r} is outside the workspace root")
        self.base_rel = base.relative_to(self.root).as_posix()
        self.staged: dict[str, _Entry] = {}
        try:
            self.root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise PatchError(f"workspace root {str(root)!r} is not usable: {e.strerror}") from e

    def close(self) -> None:
        os.close(self.root_fd)

    def rel(self, path: str) -> str:
        """The root-relative path, as reported (lexically checked; never resolved through
        symlinks)."""
        joined = f"{self.base_rel}/{path}" if self.base_rel != "." else path
        return check_path(joined)

    def parent(self, rel: str, path: str, *, create: bool = False) -> int | None:
        """A descriptor of `rel`'s directory, or None if a directory on the way is missing
        (made instead when `create`). Refuses a symlink or a file on the way."""
        parts = rel.split("/")[:-1]
        fd = os.dup(self.root_fd)
        try:
            for i, name in enumerate(parts):
                try:
                    try:
                        nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except FileNotFoundError:
                        if not create:
                            return None
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(name, 0o777, dir_fd=fd)
                        nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, name):
                        raise _symlink_error(path, "/".join(parts[: i + 1])) from None
                    raise PatchError(f"cannot access {path}: {e.strerror}") from None
                os.close(fd)
                fd = nxt
            result, fd = fd, -1
            return result
        finally:
            if fd >= 0:
                os.close(fd)

    def _lstat(self, rel: str, path: str) -> os.stat_result | None:
        fd = self.parent(rel, path)
        if fd is None:
            return None
        try:
            return os.stat(_name(rel), dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise PatchError(f"cannot access {path}: {e.strerror}") from None
        finally:
            os.close(fd)

    def exists(self, rel: str, path: str) -> bool:
        entry = self.staged.get(rel)
        if entry is not None:
            return entry.content is not None
        return self._lstat(rel, path) is not None

    def read(self, rel: str, path: str) -> str:
        entry = self.staged.get(rel)
        if entry is not None:
            if entry.content is None:
                raise PatchError(f"{path} was deleted earlier in this patch")
            return entry.content
        st = self._lstat(rel, path)
        if st is None:
            raise PatchError(f"{path} does not exist; use '{ADD}{path}' to create it")
        if stat.S_ISLNK(st.st_mode):
            raise _symlink_error(path, rel)
        if stat.S_ISDIR(st.st_mode):
            raise PatchError(f"{path} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise PatchError(f"{path} is not a regular file")
        data = self._read_bytes(rel, path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise PatchError(
                f"{path} is not UTF-8 text; apply_patch only edits text files"
            ) from None

    def _read_bytes(self, rel: str, path: str) -> bytes:
        pfd = self.parent(rel, path)
        if pfd is None:
            raise PatchError(f"{path} does not exist; use '{ADD}{path}' to create it")
        try:
            fd = os.open(_name(rel), _FILE_FLAGS, dir_fd=pfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _symlink_error(path, rel) from None
            raise PatchError(f"cannot read {path}: {e.strerror}") from None
        finally:
            os.close(pfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PatchError(f"{path} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read()
        except OSError as e:
            raise PatchError(f"cannot read {path}: {e.strerror}") from None
        finally:
            os.close(fd)

    def stage(self, rel: str, content: str | None, path: str) -> None:
        if rel in self.staged:
            self.staged[rel].content = content
            return
        original: bytes | None = None
        mode: int | None = None
        link: str | None = None
        st = self._lstat(rel, path)
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise PatchError(f"{path} is a directory, not a file")
            if stat.S_ISLNK(st.st_mode):
                if content is not None:
                    raise _symlink_error(path, rel)
                link = self._readlink(rel, path)  # deleting the link itself is harmless
            else:
                mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                original = self._read_bytes(rel, path)
        elif content is not None:
            self._check_parents(rel, path)
        self.staged[rel] = _Entry(content, original, mode, link)

    def _readlink(self, rel: str, path: str) -> str:
        pfd = self.parent(rel, path)
        if pfd is None:
            raise PatchError(f"cannot delete {path}: it does not exist")
        try:
            return os.readlink(_name(rel), dir_fd=pfd)
        except OSError as e:
            raise PatchError(f"cannot access {path}: {e.strerror}") from None
        finally:
            os.close(pfd)

    def _check_parents(self, rel: str, path: str) -> None:
        parts = rel.split("/")
        for i in range(len(parts) - 1, 0, -1):
            staged = self.staged.get("/".join(parts[:i]))
            if staged is not None and staged.content is not None:
                raise PatchError(f"cannot create {path}: {parts[i - 1]!r} is a file, not a directory")

    def _write(self, rel: str, entry: _Entry, content: bytes | None) -> None:
        """Write (None: delete) one path, opening its directories again without following."""
        pfd = self.parent(rel, rel, create=content is not None)
        if pfd is None:
            return  # deleting, and the directory is gone already
        try:
            name = _name(rel)
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=pfd)
            else:
                _write_atomic(pfd, name, content, entry.mode, self.tag)
        finally:
            os.close(pfd)

    def _restore(self, rel: str, entry: _Entry) -> None:
        if entry.link is not None:
            pfd = self.parent(rel, rel)
            if pfd is not None:
                try:
                    os.symlink(entry.link, _name(rel), dir_fd=pfd)
                finally:
                    os.close(pfd)
        else:
            self._write(rel, entry, entry.original)

    def commit(self) -> None:
        done: list[tuple[str, _Entry]] = []
        rel = ""
        try:
            for rel, entry in self.staged.items():
                data = entry.content.encode("utf-8") if entry.content is not None else None
                self._write(rel, entry, data)
                done.append((rel, entry))
        except (OSError, PatchError, UnicodeError) as e:
            for undo, entry in reversed(done):
                with contextlib.suppress(OSError, PatchError):
                    self._restore(undo, entry)
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise PatchError(f"writing {rel} failed: {why}; no files were changed") from e


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _write_atomic(dir_fd: int, name: str, data: bytes, mode: int | None, tag: int) -> None:
    tmp = f".{name}.wb-patch-{tag}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if mode is not None:
                os.fchmod(f.fileno(), mode)
        # rename replaces whatever `name` is now (a symlink too) and never follows it.
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def remove_file(root: Path, rel: str) -> bool:
    """Delete `root/rel` (a file), following no symlink on the way; False if not possible."""
    try:
        ws = Workspace(root, None)
    except PatchError:
        return False
    try:
        rel = check_path(rel)
        pfd = ws.parent(rel, rel)
        if pfd is None:
            return False
        try:
            os.unlink(_name(rel), dir_fd=pfd)
            return True
        finally:
            os.close(pfd)
    except (OSError, PatchError):
        return False
    finally:
        ws.close()

