"""The sandbox argv's path handling: the same answers as the obvious code, fewer syscalls."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core.bwrap_argv import BwrapArgs
from workbench.core.sandbox_paths import realpaths


def test_realpaths_agrees_with_realpath_through_symlinked_parents_and_leaves(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "worktrees" / "a").mkdir(parents=True)
    (real / "homes").mkdir()
    (tmp_path / "data").symlink_to(real)  # a symlinked parent shared by many names
    (real / "worktrees" / "link").symlink_to(real / "homes")  # a symlinked leaf
    (real / "worktrees" / "loop").symlink_to(real / "worktrees" / "loop")
    names = [
        f"{tmp_path}/data/worktrees/a", f"{tmp_path}/data/worktrees/missing", f"{tmp_path}/data/worktrees/link",
        f"{tmp_path}/data/worktrees/loop", f"{tmp_path}/data/homes/../worktrees/a", f"{tmp_path}/data//homes/",
        "/", "relative/name", f"{tmp_path}/nowhere/deeper/still",
    ]
    assert realpaths(names) == [os.path.realpath(n) for n in names]


def test_a_path_changed_between_two_calls_is_seen_by_the_second(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    name = str(tmp_path / "x" / "leaf")
    (tmp_path / "x").symlink_to(tmp_path / "a")
    assert realpaths([name]) == [str(tmp_path / "a" / "leaf")]
    (tmp_path / "x").unlink()
    (tmp_path / "x").symlink_to(tmp_path / "b")
    assert realpaths([name]) == [str(tmp_path / "b" / "leaf")]


def test_hide_covers_a_dir_with_tmpfs_a_file_with_dev_null_and_leaves_links_and_missing_paths(
        tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("secret")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    a = BwrapArgs()
    for name in ("dir", "file", "link", "missing"):
        a.hide(tmp_path / name)
    assert a.args == ["--tmpfs", str(tmp_path / "dir"), "--ro-bind", "/dev/null", str(tmp_path / "file")]
    assert a.hidden_dirs == [str(tmp_path / "dir")]
