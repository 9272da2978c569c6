"""Where workbench keeps its state: platformdirs locations that honour XDG_* variables.

Every function reads the environment on each call so tests (and two daemons) with
different XDG directories never share a file.

Cheap to import: the CLI's fast path (`workbench.cli_fast`) needs only the socket's path,
so pathlib and platformdirs (about 10 ms of a 20 ms interpreter start) load on first use.
"""

from __future__ import annotations

import os

from workbench.errors import WorkbenchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

APP = "workbench"


def _path(p: str) -> Path:
    from pathlib import Path

    return Path(p)


def config_dir() -> Path:
    import platformdirs

    return _path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    import platformdirs

    return _path(platformdirs.user_data_dir(APP, appauthor=False))


def state_dir() -> Path:
    import platformdirs

    return _path(platformdirs.user_state_dir(APP, appauthor=False))


def cache_dir() -> Path:
    import platformdirs

    return _path(platformdirs.user_cache_dir(APP, appauthor=False))


def runtime_dir_name() -> str:
    """`runtime_dir()` as a string, without pathlib."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, APP)
    run_user = f"/run/user/{os.getuid()}"
    if os.path.isdir(run_user) and os.access(run_user, os.W_OK):
        return os.path.join(run_user, APP)
    return f"/tmp/{APP}-{os.getuid()}"


def runtime_dir() -> Path:
    """A private (0700) directory for the daemon socket.

    platformdirs falls back to /run/user/UID or a temp path when XDG_RUNTIME_DIR is
    unset; we add a per-uid suffix under /tmp ourselves so the fallback is never shared.
    """
    return _path(runtime_dir_name())


def config_file() -> Path:
    return config_dir() / "config.toml"


def socket_name() -> str:
    """`socket_path()` as a string, without pathlib."""
    return os.path.join(runtime_dir_name(), "daemon.sock")


def socket_path() -> Path:
    return _path(socket_name())


# sun_path holds 108 bytes; a deep XDG_RUNTIME_DIR would not fit.
_SUN_PATH_MAX = 100


class socket_address:  # lower case: used as `with socket_address() as addr`, like a function
    """An address for bind/connect that fits sun_path, however deep the runtime dir is.

    A long path is reached through `/proc/self/fd/N/` of the directory, opened O_PATH.
    (A class, not @contextmanager: contextlib is one more import on the CLI's fast path.)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else socket_name()
        self.fd = -1

    def __enter__(self) -> str:
        if len(os.fsencode(self.path)) <= _SUN_PATH_MAX:
            return self.path
        parent, name = os.path.split(self.path)
        self.fd = os.open(parent, os.O_PATH | os.O_DIRECTORY)
        return f"/proc/self/fd/{self.fd}/{name}"

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def pid_file() -> Path:
    return runtime_dir() / "daemon.pid"


def lock_file() -> Path:
    return runtime_dir() / "daemon.lock"


def database_file() -> Path:
    return data_dir() / "workbench.sqlite3"


def worktrees_dir() -> Path:
    return data_dir() / "worktrees"


def log_file() -> Path:
    return state_dir() / "daemon.log"


def user_themes_dir() -> Path:
    return config_dir() / "themes"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) and force mode 0700 on it; refuse if someone else owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.lstat()
    if st.st_uid != os.getuid():
        raise WorkbenchError(
            f"{path} is owned by uid {st.st_uid}, not you; refusing to use it",
            hint="remove it or set XDG_RUNTIME_DIR to a directory of your own",
        )
    if path.is_symlink():
        raise WorkbenchError(f"{path} is a symlink; refusing to use it")
    if st.st_mode & 0o077:
        path.chmod(0o700)
    return path
