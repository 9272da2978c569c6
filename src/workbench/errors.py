"""Errors a user can act on. The CLI prints them as one `error:` line; never a traceback."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A failure with a message meant for the user. `exit_code` 2 = usage, 1 = other."""

    exit_code = 1
    code = "failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(WorkbenchError):
    exit_code = 2
    code = "usage"


class NotFound(UsageError):
    code = "not_found"


class ConfigError(UsageError):
    code = "config"


class GitError(WorkbenchError):
    code = "git"


class SandboxError(WorkbenchError):
    code = "sandbox"


class DaemonError(WorkbenchError):
    code = "daemon"


class DaemonNotRunning(DaemonError):
    """Asked something of a daemon that is not running (and not to start it)."""

    exit_code = 3  # as `systemctl status` says "not running"


ERROR_CLASSES: dict[str, type[WorkbenchError]] = {
    cls.code: cls
    for cls in (WorkbenchError, UsageError, NotFound, ConfigError, GitError, SandboxError, DaemonError)
}


def from_wire(code: str, message: str) -> WorkbenchError:
    """Rebuild an error sent by the daemon so the CLI exits with the right code."""
    return ERROR_CLASSES.get(code, WorkbenchError)(message)
