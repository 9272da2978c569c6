"""The fast path of the diff parser gives exactly what the line-by-line parser gives."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo
from tests.diff_support import expected_id
from workbench.core.diff_model import FileDiff
from workbench.core.diff_parse import parse_git_fast, parse_unified, parse_unified_exact
from workbench.errors import UsageError


def shape(files: list[FileDiff]) -> list[Any]:
    return [(f.to_json(), [h.id for h in f.hunks], f.render()) for f in files]


def git_diff(repo: Path, base: str) -> str:
    """`git diff` of everything in the repo against `base`, as compute_diff asks for it."""
    git(repo, "add", "-A")
    out = subprocess.run(
        ["git", "-c", "core.quotePath=false", "diff", "--cached", "--no-color", "--src-prefix=a/",
         "--dst-prefix=b/", "-M", "-U3", base],
        cwd=repo, capture_output=True, check=True,
    ).stdout
    return out.decode("utf-8", "surrogateescape")


def test_fast_and_slow_parsers_agree_on_a_varied_change(tmp_path: Path) -> None:
    lines = "".join(f"l{i}\n" for i in range(60))
    repo = make_repo(tmp_path / "r", {
        "a.txt": lines, "crlf.txt": "a\r\nb\r\nc\r\n", "nonl.txt": "x\ny", "old.txt": lines,
        "gone.txt": "bye\n", "bin.dat": "\0\1\2", "mode.sh": "echo\n", "link": "target\n",
        "empty.txt": "", "dup.txt": "same\nfiller\n" * 10,
    })
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "a.txt").write_text(lines.replace("l5\n", "L5\n").replace("l40\n", "").replace("l59\n", "l59"))
    (repo / "crlf.txt").write_bytes(b"a\r\nB\r\nc")
    (repo / "nonl.txt").write_text("x\ny\n")
    os.rename(repo / "old.txt", repo / "ren amed ✓.txt")
    (repo / "gone.txt").unlink()
    (repo / "bin.dat").write_bytes(b"\0\1\3")
    os.chmod(repo / "mode.sh", 0o755)
    (repo / "link").unlink()
    os.symlink("a.txt", repo / "link")
    (repo / "empty.txt").write_text("now\n")
    (repo / "dup.txt").write_text("SAME\nfiller\n" * 10)
    (repo / "tab\tname.txt").write_text("quoted path\n")
    (repo / "new.bin").write_bytes(b"\0new")
    text = git_diff(repo, base)
    fast = parse_git_fast(text)
    assert fast is not None
    assert shape(fast) == shape(parse_unified_exact(text))
    ids = [h.id for f in fast for h in f.hunks]
    assert len(ids) == len(set(ids))
    # ids equal the documented hash of the built lines
    for f in fast:
        seen: dict[str, int] = {}
        for h in f.hunks:
            first = expected_id(f.path, h.lines, 0)
            n = seen.get(first, 0)
            seen[first] = n + 1
            assert h.id == (first if n == 0 else expected_id(f.path, h.lines, n))


@pytest.mark.parametrize("bad", [
    "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n",  # cut short
    "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -x +1 @@\n-a\n",  # malformed header
])
def test_fast_path_defers_to_the_exact_parser_for_errors(bad: str) -> None:
    assert parse_git_fast(bad) is None
    with pytest.raises(UsageError):
        parse_unified(bad)


def test_fast_path_defers_on_lines_beyond_the_counts() -> None:
    text = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n"
    assert parse_git_fast(text) is None
    (f,) = parse_unified(text)
    assert (f.added, f.removed) == (1, 1)
