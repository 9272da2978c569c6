"""Where workbench keeps its state: platformdirs locations that honour XDG_* variables.

Every function reads the environment on each call so tests (and two daemons) with
different XDG directories never share a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from workbench.errors import WorkbenchError

APP = "workbench"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def runtime_dir() -> Path:
    """A private (0700) directory for the daemon socket.

    platformdirs falls back to /run/user/UID or a temp path when XDG_RUNTIME_DIR is
    unset; we add a per-uid suffix under /tmp ourselves so the fallback is never shared.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / APP
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir() and os.access(run_user, os.W_OK):
        return run_user / APP
    return Path(f"/tmp/{APP}-{os.getuid()}")


def config_file() -> Path:
    return config_dir() / "config.toml"


def socket_path() -> Path:
    return runtime_dir() / "daemon.sock"


# sun_path holds 108 bytes; a deep XDG_RUNTIME_DIR would not fit.
_SUN_PATH_MAX = 100


@contextmanager
def socket_address(path: Path | None = None) -> Iterator[str]:
    """An address for bind/connect that fits sun_path, however deep the runtime dir is.

    A long path is reached through `/proc/self/fd/N/` of the directory, opened O_PATH.
    """
    path = path or socket_path()
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


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
