"""Which repositories' `.workbench.toml` files the user trusted, like `direnv allow`.

A record is the repository's real path and the sha256 of the exact bytes of its
`.workbench.toml` when the user ran `workbench trust`. Any change to the file (a session
that edits it in place, a merge that brings a new one) makes it untrusted again.

The records live in `trust.json` in the user's config directory, which no sandboxed
session can write (it is in every sandbox's protected paths). Writes are atomic: a
temporary file in the same directory, fsynced, then renamed over the old one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workbench import paths
from workbench.errors import ConfigError

FILE_NAME = ".workbench.toml"
MAX_BYTES = 1 << 20  # a repo config is a few hundred bytes; refuse to read a huge one

TrustState = Literal["trusted", "untrusted", "changed", "missing"]


def store_file() -> Path:
    return paths.config_dir() / "trust.json"


def repo_key(repo: Path | str) -> str:
    """The repository's real path: the same repo reached through a symlink is one record."""
    return os.path.realpath(os.fspath(repo))


def read_repo_file(path: Path) -> bytes:
    """The exact bytes of a repo's config file, never through a symlink or from a FIFO.

    The file is in a checkout that sessions may write, so it is opened with O_NOFOLLOW
    and O_NONBLOCK and must be a regular file of sane size.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == 40:  # ELOOP: the last component is a symlink
            raise ConfigError(f"{path}: is a symbolic link; workbench reads a repo's config only from a "
                              "regular file", hint="replace the link with the file itself") from None
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        if st.st_size > MAX_BYTES:
            raise ConfigError(f"{path}: too large ({st.st_size} bytes) for a config file")
        chunks = []
        total = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_BYTES:
                raise ConfigError(f"{path}: too large for a config file")
        return b"".join(chunks)
    finally:
        os.close(fd)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Record:
    repo: str
    sha256: str
    trusted_at: float

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "trusted_at": self.trusted_at}


def load_records() -> dict[str, Record]:
    """Every trust record; a missing or unreadable store trusts nothing."""
    f = store_file()
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{f}: cannot read the trust records ({e})",
                          hint="fix or delete the file, then trust your repositories again") from None
    out: dict[str, Record] = {}
    repos = raw.get("repos") if isinstance(raw, dict) else None
    if not isinstance(repos, dict):
        return {}
    for repo, rec in repos.items():
        if isinstance(rec, dict) and isinstance(rec.get("sha256"), str):
            out[repo] = Record(repo, rec["sha256"], float(rec.get("trusted_at") or 0))
    return out


def _save(records: dict[str, Record]) -> None:
    f = store_file()
    paths.ensure_private_dir(f.parent)
    body = {"version": 1, "repos": {k: r.to_json() for k, r in sorted(records.items())}}
    fd, tmp = tempfile.mkstemp(dir=f.parent, prefix=".trust-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, f)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def state(repo: Path | str) -> tuple[TrustState, str | None]:
    """(state of the repo's file, its sha256 or None when there is no file)."""
    path = Path(repo_key(repo)) / FILE_NAME
    if not path.exists() and not path.is_symlink():
        return "missing", None
    sha = digest(read_repo_file(path))
    rec = load_records().get(repo_key(repo))
    if rec is None:
        return "untrusted", sha
    return ("trusted" if rec.sha256 == sha else "changed"), sha


def trust(repo: Path | str, expect_sha256: str | None = None) -> Record:
    """Record the current bytes of the repo's `.workbench.toml` as trusted.

    With `expect_sha256`, refuse if the file changed since the caller examined it.
    """
    key = repo_key(repo)
    path = Path(key) / FILE_NAME
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{path}: no such file; there is nothing to trust")
    sha = digest(read_repo_file(path))
    if expect_sha256 is not None and sha != expect_sha256:
        raise ConfigError(f"{path}: changed while it was being read; nothing was trusted",
                          hint="look at the file again and retry")
    rec = Record(key, sha, round(time.time(), 3))
    records = load_records()
    records[key] = rec
    _save(records)
    return rec


def revoke(repo: Path | str) -> bool:
    """Forget the repo's trust record; False if there was none."""
    key = repo_key(repo)
    records = load_records()
    if records.pop(key, None) is None:
        return False
    _save(records)
    return True
