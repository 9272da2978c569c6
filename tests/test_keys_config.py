from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench import config, paths
from workbench.core.keys import decode_escapes
from workbench.errors import ConfigError, UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"ls\r", b"ls\r"),
        (r"\t\e[A", b"\t\x1b[A"),
        (r"\x03", b"\x03"),
        (r"\033", b"\x1b"),
        (r"\\n", b"\\n"),
        (r"caf\u00e9", "café".encode()),
        (r"\cC", b"\x03"),
        ("中文", "中文".encode()),
    ],
)
def test_decode_escapes(text: str, expected: bytes) -> None:
    assert decode_escapes(text) == expected


@pytest.mark.parametrize("bad", ["\\", r"\xZZ", r"\q"])
def test_decode_escapes_rejects_bad_input(bad: str) -> None:
    with pytest.raises(UsageError):
        decode_escapes(bad)


def test_paths_follow_xdg(isolated_env: Path) -> None:
    assert paths.config_dir() == isolated_env / "config" / "workbench"
    assert paths.data_dir() == isolated_env / "data" / "workbench"
    assert paths.state_dir() == isolated_env / "state" / "workbench"
    assert paths.cache_dir() == isolated_env / "cache" / "workbench"
    assert paths.socket_path() == Path(os.environ["XDG_RUNTIME_DIR"]) / "workbench" / "daemon.sock"
    assert (isolated_env / "runtime").resolve() == Path(os.environ["XDG_RUNTIME_DIR"])


def test_config_unknown_key_names_line(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[ui]\ntheme = 'x'\n\n[worktree]\ncopy_file = ['.env']\n")
    with pytest.raises(ConfigError) as e:
        config.load(path=f)
    assert f"{f}:5" in str(e.value) and "worktree.copy_file" in str(e.value) and "unknown key" in str(e.value)


def test_repo_file_overrides_and_refuses_personal_sections(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[session]\napproval = 'full-auto'\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".workbench.toml").write_text("[check]\ncommand = 'pytest -q'\n")
    cfg = config.load(repo, path=user)
    assert cfg.session.approval == "full-auto" and cfg.check.command == "pytest -q"
    (repo / ".workbench.toml").write_text("[providers.x]\nbase_url = 'http://evil'\n")
    with pytest.raises(ConfigError) as e:
        config.load(repo, path=user)
    assert ".workbench.toml:1" in str(e.value) and "not allowed in a repo file" in str(e.value)


def test_provider_defaults_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "m1")
    monkeypatch.setenv("WORKBENCH_WIRE_API", "responses")
    p = config.Config().provider()
    assert (p.base_url, p.model, p.wire_api) == ("http://127.0.0.1:9/v1", "m1", "responses")
