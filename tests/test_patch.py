"""The `*** Begin Patch` parser and applier on real files in temp directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.agent.patch import (
    AddFile,
    DeleteFile,
    PatchError,
    UpdateFile,
    apply_patch,
    extract_patch_from_argv,
    parse_patch,
)


def P(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"])


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


# --------------------------------------------------------------------------- parsing


def test_parse_all_operations() -> None:
    ops = parse_patch(
        P(
            "*** Add File: path/new.py",
            "+line",
            "+",
            "*** Update File: path/old.py",
            "*** Move to: path/renamed.py",
            "@@ def something",
            " context",
            "-old",
            "+new",
            "@@",
            "-x",
            "*** End of File",
            "*** Delete File: path/gone.py",
        )
    )
    assert ops[0] == AddFile("path/new.py", "line\n\n")
    upd = ops[1]
    assert isinstance(upd, UpdateFile)
    assert upd.path == "path/old.py" and upd.move_to == "path/renamed.py"
    assert [c.context for c in upd.chunks] == ["def something", None]
    assert upd.chunks[0].old_lines == ["context", "old"]
    assert upd.chunks[0].new_lines == ["context", "new"]
    assert upd.chunks[1].old_lines == ["x"] and upd.chunks[1].new_lines == []
    assert upd.chunks[1].end_of_file and not upd.chunks[0].end_of_file
    assert ops[2] == DeleteFile("path/gone.py")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "first line"),
        ("hello", "first line"),
        ("*** Begin Patch\n*** Add File: a\n+x", "last line"),
        (P(), "no file operations"),
        (P("*** Frobnicate File: a"), "unexpected line 2"),
        (P("*** Update File: a.py"), "no hunks"),
        (P("*** Update File: a.py", "@@", " a", "@@"), "empty hunk"),
        (P("*** Update File: a.py", "@@", "?what"), "must start with ' '"),
        (P("*** Update File: a.py", "@@", "-a", "zzz"), "unexpected line 5"),
        (P("*** Add File: "), "empty path"),
    ],
)
def test_parse_errors_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(PatchError, match=needle):
        parse_patch(text)


def test_parse_delete_followed_by_old_content() -> None:
    ops = parse_patch(P("*** Delete File: a.txt", "-old", "-lines", "*** Add File: b", "+x"))
    assert ops == [DeleteFile("a.txt"), AddFile("b", "x\n")]


def test_parse_first_hunk_may_omit_header_and_git_style_header() -> None:
    ops = parse_patch(P("*** Update File: a", " x", "-y", "+z", "@@ -10,3 +10,3 @@ def f():", "-q"))
    upd = ops[0]
    assert isinstance(upd, UpdateFile)
    assert upd.chunks[0].context is None and upd.chunks[0].old_lines == ["x", "y"]
    assert upd.chunks[1].context == "def f():"


def test_parse_unwraps_heredoc_and_fences_and_crlf() -> None:
    inner = P("*** Add File: a.txt", "+x")
    for text in (
        f"<<'EOF'\n{inner}\nEOF\n",
        f"apply_patch <<EOF\n{inner}\nEOF",
        f"```\n{inner}\n```",
        inner.replace("\n", "\r\n"),
        f"\n\n  {inner}  \n",
    ):
        assert parse_patch(text) == [AddFile("a.txt", "x\n")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_parse_random_text_only_raises_patch_error(text: str) -> None:
    try:
        ops = parse_patch(text)
    except PatchError as e:
        assert str(e)
    else:
        assert ops


_LINE = st.sampled_from(
    [" a", "-a", "+b", "", "@@", "@@ x", "*** End of File", "+", " ", "-", "***", "\t", "é"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                ["*** Update File: f.txt", "*** Add File: n.txt", "*** Delete File: g.txt",
                 "*** Move to: m.txt", "*** Update File: ../x", "*** Add File: /abs"]
            ),
            _LINE,
            st.text(max_size=8),
        ),
        max_size=12,
    )
)  # fmt: skip
def test_apply_structured_random_patches_only_raise_patch_error(
    tmp_path_factory: pytest.TempPathFactory, body: list[str]
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "f.txt").write_text("a\nb\na\n")
    (root / "g.txt").write_text("g\n")
    before = snapshot(root)
    try:
        result = apply_patch(P(*body), root)
    except PatchError as e:
        assert str(e)
        assert snapshot(root) == before  # all-or-nothing
    else:
        assert result.summary()


# --------------------------------------------------------------------------- applying


def test_add_nested_update_delete_and_summary(ws: Path) -> None:
    (ws / "old.txt").write_text("one\ntwo\nthree\n")
    (ws / "gone.txt").write_text("bye\n")
    result = apply_patch(
        P(
            "*** Add File: a/b/c/new.txt",
            "+hello",
            "+world",
            "*** Update File: old.txt",
            "@@",
            " one",
            "-two",
            "+TWO",
            " three",
            "*** Delete File: gone.txt",
        ),
        ws,
    )
    assert (ws / "a/b/c/new.txt").read_text() == "hello\nworld\n"
    assert (ws / "old.txt").read_text() == "one\nTWO\nthree\n"
    assert not (ws / "gone.txt").exists()
    assert result.added == ["a/b/c/new.txt"]
    assert result.modified == ["old.txt"]
    assert result.deleted == ["gone.txt"]
    assert result.summary() == "A a/b/c/new.txt\nM old.txt\nD gone.txt"


def test_context_mismatch_writes_nothing_and_explains(ws: Path) -> None:
    (ws / "a.py").write_text("def f():\n    return 1\n")
    (ws / "b.py").write_text("x = 1\n")
    before = snapshot(ws)
    patch = P(
        "*** Update File: b.py",
        "-x = 1",
        "+x = 2",
        "*** Add File: c.py",
        "+new",
        "*** Update File: a.py",
        "@@",
        " def f():",
        "-    return 2",
        "+    return 3",
    )
    with pytest.raises(PatchError) as info:
        apply_patch(patch, ws)
    msg = str(info.value)
    assert "a.py" in msg and "hunk 1" in msg
    assert "'    return 2'" in msg and "'    return 1'" in msg  # expected vs found
    assert "First difference at line 2" in msg
    assert snapshot(ws) == before
    assert not (ws / "c.py").exists()


def test_missing_context_header_is_reported(ws: Path) -> None:
    (ws / "a.py").write_text("x\n")
    with pytest.raises(PatchError, match=r"'@@' context line 'class Nope'"):
        apply_patch(P("*** Update File: a.py", "@@ class Nope", "-x", "+y"), ws)


def test_update_missing_file_suggests_add(ws: Path) -> None:
    with pytest.raises(PatchError, match=r"does not exist; use '\*\*\* Add File: nope.py'"):
        apply_patch(P("*** Update File: nope.py", "@@", "-x", "+y"), ws)
    with pytest.raises(PatchError, match=r"cannot delete nope\.py"):
        apply_patch(P("*** Delete File: nope.py"), ws)


def test_crlf_file_stays_crlf(ws: Path) -> None:
    (ws / "w.txt").write_bytes(b"alpha\r\nbeta\r\ngamma\r\n")
    apply_patch(P("*** Update File: w.txt", "@@", " alpha", "-beta", "+BETA", "+extra"), ws)
    assert (ws / "w.txt").read_bytes() == b"alpha\r\nBETA\r\nextra\r\ngamma\r\n"


def test_crlf_patch_text_on_lf_file(ws: Path) -> None:
    (ws / "u.txt").write_bytes(b"a\nb\n")
    patch = P("*** Update File: u.txt", "@@", "-b", "+c").replace("\n", "\r\n")
    apply_patch(patch, ws)
    assert (ws / "u.txt").read_bytes() == b"a\nc\n"


def test_unicode_paths_and_text(ws: Path) -> None:
    (ws / "données").mkdir()
    (ws / "données" / "café.txt").write_text("naïve — “quoted”\n日本語\n", encoding="utf-8")
    result = apply_patch(
        P(
            "*** Update File: données/café.txt",
            "@@",
            "-日本語",
            "+中文 🎉",
            "*** Add File: 新しい/ファイル.md",
            "+# 見出し",
        ),
        ws,
    )
    assert (ws / "données/café.txt").read_text("utf-8") == "naïve — “quoted”\n中文 🎉\n"
    assert (ws / "新しい/ファイル.md").read_text("utf-8") == "# 見出し\n"
    assert result.added == ["新しい/ファイル.md"]


def test_move_with_edit_and_pure_rename(ws: Path) -> None:
    (ws / "src").mkdir()
    (ws / "src/a.py").write_text("A = 1\n")
    (ws / "b.py").write_text("B = 1\n")
    result = apply_patch(
        P(
            "*** Update File: src/a.py",
            "*** Move to: lib/deep/a2.py",
            "@@",
            "-A = 1",
            "+A = 2",
            "*** Update File: b.py",
            "*** Move to: c.py",
        ),
        ws,
    )
    assert not (ws / "src/a.py").exists()
    assert (ws / "lib/deep/a2.py").read_text() == "A = 2\n"
    assert (ws / "c.py").read_text() == "B = 1\n" and not (ws / "b.py").exists()
    assert result.moved == [("src/a.py", "lib/deep/a2.py"), ("b.py", "c.py")]
    assert "R src/a.py -> lib/deep/a2.py" in result.summary()


def test_move_onto_existing_file_is_refused(ws: Path) -> None:
    (ws / "a").write_text("a\n")
    (ws / "b").write_text("b\n")
    with pytest.raises(PatchError, match="destination exists"):
        apply_patch(P("*** Update File: a", "*** Move to: b", "@@", "-a", "+z"), ws)
    assert (ws / "a").read_text() == "a\n" and (ws / "b").read_text() == "b\n"


def test_multiple_chunks_with_headers_and_repeated_lines(ws: Path) -> None:
    body = "    def run(self):\n        return 0\n"
    text = f"class A:\n{body}\nclass B:\n{body}"
    (ws / "m.py").write_text(text)
    apply_patch(
        P(
            "*** Update File: m.py",
            "@@ class A:",
            "@@     def run(self):",
            "-        return 0",
            "+        return 1",
            "@@ class B:",
            "     def run(self):",
            "-        return 0",
            "+        return 2",
        ),
        ws,
    )
    assert (ws / "m.py").read_text() == text.replace("return 0", "return 1", 1).replace(
        "return 0", "return 2"
    )


def test_header_only_chunk_then_insertion_after_it(ws: Path) -> None:
    (ws / "f.py").write_text("def f():\n    pass\n")
    apply_patch(P("*** Update File: f.py", "@@ def f():", "+    # doc"), ws)
    assert (ws / "f.py").read_text() == "def f():\n    # doc\n    pass\n"


def test_chunks_out_of_order_still_apply(ws: Path) -> None:
    (ws / "o.txt").write_text("1\n2\n3\n4\n5\n")
    apply_patch(P("*** Update File: o.txt", "@@", "-4", "+four", "@@", "-2", "+two"), ws)
    assert (ws / "o.txt").read_text() == "1\ntwo\n3\nfour\n5\n"


def test_fuzzy_whitespace_and_unicode_punctuation(ws: Path) -> None:
    (ws / "s.py").write_text("x = 1   \n\tif  y:\nmsg = \u201cit\u2019s \u2014 fine\u201d\n")
    apply_patch(
        P(
            "*** Update File: s.py",
            "@@",
            "-x = 1",  # file has trailing spaces
            "+x = 2",
            "-    if  y:",  # file has a tab
            "+    if z:",
            '-msg = "it\'s - fine"',  # ASCII for curly quotes and an em dash
            '+msg = "ok"',
        ),
        ws,
    )
    assert (ws / "s.py").read_text() == 'x = 2\n    if z:\nmsg = "ok"\n'


def test_exact_match_beats_fuzzy_match_later(ws: Path) -> None:
    (ws / "e.txt").write_text("v  \nv\n")
    apply_patch(P("*** Update File: e.txt", "@@", "-v", "+w"), ws)
    assert (ws / "e.txt").read_text() == "v  \nw\n"


def test_missing_final_newline_preserved_when_end_untouched(ws: Path) -> None:
    (ws / "n.txt").write_bytes(b"a\nb\nc")
    apply_patch(P("*** Update File: n.txt", "@@", "-a", "+A"), ws)
    assert (ws / "n.txt").read_bytes() == b"A\nb\nc"


def test_changing_the_last_line_adds_final_newline(ws: Path) -> None:
    (ws / "n.txt").write_bytes(b"a\nb\nc")
    apply_patch(P("*** Update File: n.txt", "@@", " b", "-c", "+C", "*** End of File"), ws)
    assert (ws / "n.txt").read_bytes() == b"a\nb\nC\n"


def test_end_of_file_marker_prefers_the_last_occurrence(ws: Path) -> None:
    (ws / "r.txt").write_text("end\nmiddle\nend\n")
    apply_patch(P("*** Update File: r.txt", "@@", "-end", "+END", "*** End of File"), ws)
    assert (ws / "r.txt").read_text() == "end\nmiddle\nEND\n"


def test_append_without_context_and_trailing_blank_context(ws: Path) -> None:
    (ws / "t.txt").write_text("one\ntwo\n")
    apply_patch(P("*** Update File: t.txt", "@@", "+three"), ws)
    assert (ws / "t.txt").read_text() == "one\ntwo\nthree\n"
    # A blank line after the hunk (before the next header) is a separator, not context.
    apply_patch(P("*** Update File: t.txt", "@@", " three", "+four", "", ""), ws)
    assert (ws / "t.txt").read_text() == "one\ntwo\nthree\nfour\n"


def test_add_overwrites_existing_file_as_modified(ws: Path) -> None:
    (ws / "x.txt").write_text("old\n")
    result = apply_patch(P("*** Add File: x.txt", "+new"), ws)
    assert (ws / "x.txt").read_text() == "new\n"
    assert result.modified == ["x.txt"] and result.added == []


def test_file_mode_is_kept(ws: Path) -> None:
    script = ws / "run.sh"
    script.write_text("#!/bin/sh\necho a\n")
    script.chmod(0o755)
    apply_patch(P("*** Update File: run.sh", "@@", "-echo a", "+echo b"), ws)
    assert script.stat().st_mode & 0o777 == 0o755
    assert script.read_text() == "#!/bin/sh\necho b\n"


def test_cwd_makes_paths_relative_but_reports_from_root(ws: Path) -> None:
    (ws / "pkg").mkdir()
    result = apply_patch(P("*** Add File: mod.py", "+x"), ws, cwd=ws / "pkg")
    assert (ws / "pkg/mod.py").read_text() == "x\n"
    assert result.added == ["pkg/mod.py"]


def test_binary_file_update_is_refused(ws: Path) -> None:
    (ws / "b.bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PatchError, match="not UTF-8"):
        apply_patch(P("*** Update File: b.bin", "@@", "-x", "+y"), ws)


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../../x", "/etc/passwd", "a\x00b", ".git/hooks/pre-commit", "sub/.GIT/config"],
)
def test_path_escapes_are_rejected(ws: Path, path: str) -> None:
    before = snapshot(ws.parent)
    for patch in (
        P(f"*** Add File: {path}", "+pwned"),
        P(f"*** Delete File: {path}"),
        P(f"*** Update File: {path}", "@@", "-root", "+pwned"),
        P("*** Update File: ok.txt", f"*** Move to: {path}", "@@", "-a", "+b"),
    ):
        (ws / "ok.txt").write_text("a\n")
        with pytest.raises(PatchError):
            apply_patch(patch, ws)
    (ws / "ok.txt").unlink()
    assert snapshot(ws.parent) == before


def test_symlink_pointing_outside_is_rejected(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (ws / "out").symlink_to(outside)
    (ws / "leak.txt").symlink_to(outside / "secret.txt")
    for patch in (
        P("*** Add File: out/new.txt", "+x"),
        P("*** Update File: out/secret.txt", "@@", "-secret", "+pwned"),
        P("*** Update File: leak.txt", "@@", "-secret", "+pwned"),
        P("*** Add File: leak.txt", "+pwned"),
    ):
        with pytest.raises(PatchError, match="outside the workspace"):
            apply_patch(patch, ws)
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # Deleting the link itself is fine: only the link goes, the target stays.
    apply_patch(P("*** Delete File: leak.txt"), ws)
    assert not os.path.lexists(ws / "leak.txt")
    assert (outside / "secret.txt").read_text() == "secret\n"


def test_symlink_inside_workspace_is_refused_too(ws: Path) -> None:
    # Even a link that stays inside: it could be swapped for one that does not mid-patch.
    (ws / "real").mkdir()
    (ws / "real/f.txt").write_text("a\n")
    (ws / "alias").symlink_to("real")
    (ws / "g.txt").symlink_to("real/f.txt")
    for patch in (
        P("*** Update File: alias/f.txt", "@@", "-a", "+b"),
        P("*** Add File: alias/new.txt", "+b"),
        P("*** Update File: g.txt", "@@", "-a", "+b"),
    ):
        with pytest.raises(PatchError, match="does not follow symlinks"):
            apply_patch(patch, ws)
    assert (ws / "real/f.txt").read_text() == "a\n"
    assert sorted(os.listdir(ws / "real")) == ["f.txt"]
    apply_patch(P("*** Update File: real/f.txt", "@@", "-a", "+b"), ws)
    assert (ws / "real/f.txt").read_text() == "b\n"


def test_cwd_outside_root_is_rejected(ws: Path, tmp_path: Path) -> None:
    with pytest.raises(PatchError, match="outside the workspace"):
        apply_patch(P("*** Add File: a", "+x"), ws, cwd=tmp_path)


# --------------------------------------------------------------------------- argv forms


def test_extract_patch_from_argv_forms() -> None:
    patch = P("*** Add File: a", "+x")
    assert extract_patch_from_argv(["apply_patch", patch]) == patch
    assert extract_patch_from_argv(["applypatch", patch]) == patch
    assert extract_patch_from_argv(["bash", "-lc", f"apply_patch <<'EOF'\n{patch}\nEOF\n"]) == patch
    assert (
        extract_patch_from_argv(["bash", "-lc", f'apply_patch <<"PATCH"\n{patch}\nPATCH']) == patch
    )
    assert extract_patch_from_argv(["sh", "-c", f"applypatch <<EOF\n{patch}\nEOF"]) == patch
    assert (
        extract_patch_from_argv(["bash", "-lc", f"cd sub && apply_patch <<'EOF'\n{patch}\nEOF"])
        == patch
    )
    assert extract_patch_from_argv(["bash", "-lc", "ls -la"]) is None
    assert extract_patch_from_argv(["apply_patch"]) is None
    assert extract_patch_from_argv(["cat", patch]) is None
    assert (
        extract_patch_from_argv(["bash", "-lc", f"apply_patch <<'EOF'\n{patch}\nEOF\nrm -rf /"])
        is None
    )
    assert extract_patch_from_argv([]) is None
