"""Shared fixtures: every test gets its own XDG directories, HOME and git identity."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.agent_support import Factory
    from tests.wb import Wb
    from workbench.fakes.model_server import FakeOpenAI, Script


@pytest.fixture
def needs_bwrap() -> None:
    """Skip, saying why, where bubblewrap cannot run (the sandbox suites use it)."""
    from workbench.core import sandbox_probe

    res = sandbox_probe.probe()
    if not res.ok:
        pytest.skip(f"bubblewrap cannot run here: {res.reason}")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Private XDG dirs and HOME so tests (and their daemons) never see each other."""
    root = tmp_path / "env"
    for name in ("config", "data", "state", "cache", "home"):
        (root / name).mkdir(parents=True)
    # The socket path must fit sun_path (108 bytes): a short private dir, as /run/user/UID is;
    # `env/runtime` points at it for tests that look there.
    runtime = Path(tempfile.mkdtemp(prefix="wbrt-", dir="/tmp"))
    (root / "runtime").symlink_to(runtime)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setenv("SHELL", "/bin/bash")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield root
    shutil.rmtree(runtime, ignore_errors=True)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A real git repo with one commit on `main`."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for rel, text in (files or {"README.md": "# demo\n"}).items():
        f = path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# demo\n", "src/app.py": "print('hi')\n"})


@pytest.fixture
def repo2(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo2", {"README.md": "# second\n"})


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    yield
    # Reap zombies of processes a test started, so leaks show up in the next test's counts.
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


@pytest.fixture
def wb(isolated_env: Path) -> Iterator[Wb]:
    """The real CLI against a private daemon; the daemon is stopped afterwards."""
    from tests.wb import Wb

    cfg = isolated_env / "config" / "workbench"
    cfg.mkdir(parents=True, exist_ok=True)
    client = Wb()
    yield client
    client.stop()


@pytest.fixture
def fake_factory() -> Iterator[Factory]:
    """Fake model servers started on 127.0.0.1 for a test, stopped after it (imported here,
    not at the top: every test process loads this file, few tests need the agent)."""
    from workbench.fakes.model_server import FakeOpenAI

    servers: list[FakeOpenAI] = []

    def make(scripts: list[Script], **kw: Any) -> FakeOpenAI:
        fake = FakeOpenAI(scripts, **kw)
        fake.start()
        servers.append(fake)
        return fake

    yield make
    for f in servers:
        f.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from tests.scheduling import longest_first

    longest_first(items)
