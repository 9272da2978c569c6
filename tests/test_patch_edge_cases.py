"""Edge cases of the apply_patch parser and applier that mutation testing found untested.

Each test pins one behaviour a plausible one-token slip in src/workbench/agent/patch.py would
break (docs/testing.md, "Mutation testing"); messages are asserted because the model reads them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workbench.agent.patch import (
    AddFile,
    Chunk,
    DeleteFile,
    PatchError,
    UpdateFile,
    apply_patch,
    check_path,
    extract_patch_from_argv,
    extract_patch_with_cwd,
    parse_patch,
)


def P(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"])


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a\x00b", "path 'a\\x00b' contains a NUL byte"),
        ("/etc/passwd", "path '/etc/passwd' is absolute; use a path relative to the workspace root"),
        ("\\share\\x", "is absolute"),
        ("C:\\x", "is absolute"),
        ("c:/x", "is absolute"),
        ("Z:/x", "is absolute"),
        ("a/../b", "path 'a/../b' contains '..'; paths must stay inside the workspace"),
        ("a\\..\\b", "contains '..'"),
        ("./", "path './' does not name a file"),
        (".git/config", "path '.git/config' is inside .git; apply_patch does not edit git metadata"),
        ("sub/.GIT/HEAD", "is inside .git"),
    ],
)
def test_check_path_rejects_with_a_clear_message(path: str, message: str) -> None:
    with pytest.raises(PatchError) as info:
        check_path(path)
    assert message in str(info.value)


def test_check_path_normalises_separators_and_dots() -> None:
    assert check_path("./a//b/./c") == "a/b/c"
    assert check_path("a\\b") == "a/b"
    assert check_path("a b/c") == "a b/c"
    assert check_path("...") == "..."  # only '..' itself escapes
    assert check_path("git/.gitignore") == "git/.gitignore"
    with pytest.raises(PatchError, match=r"^move target 'x/..' contains"):
        check_path("x/..", what="move target")


# --------------------------------------------------------------------------- parsing


def test_parse_rejects_non_text_naming_the_type() -> None:
    with pytest.raises(PatchError, match=r"^patch must be text, not bytes$"):
        parse_patch(b"*** Begin Patch")  # type: ignore[arg-type]


def test_parse_strips_a_leading_bom() -> None:
    assert parse_patch("\ufeff" + P("*** Add File: a", "+x")) == [AddFile("a", "x\n")]


def test_first_line_error_quotes_what_it_got_truncated() -> None:
    with pytest.raises(PatchError) as info:
        parse_patch("```\n```")
    assert str(info.value) == "the first line of the patch must be '*** Begin Patch', got ''"
    with pytest.raises(PatchError) as info:
        parse_patch("y" * 100 + "\n*** End Patch")
    assert str(info.value).endswith(f"got {'y' * 80!r}")


def test_only_two_wrappers_are_removed_and_a_lone_fence_is_not_one() -> None:
    inner = P("*** Add File: a", "+x")
    assert parse_patch(f"```\n<<EOF\n{inner}\nEOF\n```") == [AddFile("a", "x\n")]
    with pytest.raises(PatchError, match=r"first line"):
        parse_patch(f"```\n```\n```\n{inner}\n```\n```\n```")
    # An opening fence without a closing one is not a wrapper: the patch is malformed.
    with pytest.raises(PatchError, match=r"first line of the patch must be '\*\*\* Begin Patch', got '```'"):
        parse_patch(f"```\n{inner}")


def test_unexpected_top_level_line_is_numbered_and_truncated() -> None:
    with pytest.raises(PatchError) as info:
        parse_patch(P("*** Delete File: a", "z" * 100))
    msg = str(info.value)
    assert msg.startswith(f"unexpected line 3 of the patch: {'z' * 80!r}. Expected ")
    assert "'*** Add File: PATH', '*** Update File: PATH', '*** Delete File: PATH' or '*** End Patch'" in msg


def test_blank_lines_between_operations_are_skipped() -> None:
    ops = parse_patch(P("*** Delete File: a", "", "*** Delete File: b", "*** Delete File: c"))
    assert ops == [DeleteFile("a"), DeleteFile("b"), DeleteFile("c")]


def test_add_body_keeps_inner_blank_lines_and_drops_trailing_ones() -> None:
    ops = parse_patch(P("*** Add File: a", "+one", "", "", "+two", "", "*** Delete File: b"))
    assert ops == [AddFile("a", "one\n\n\ntwo\n"), DeleteFile("b")]


def test_chunks_record_patch_line_context_outer_and_eof() -> None:
    ops = parse_patch(
        P(
            "*** Update File: f",
            "@@ class A",
            "@@def run",
            " x",
            "-y",
            "+z",
            "@@",
            "-q",
            "*** End of File",
        )
    )
    assert ops == [
        UpdateFile(
            "f",
            [
                Chunk("def run", ["x", "y"], ["x", "z"], False, 3, ["class A"]),
                Chunk(None, ["q"], [], True, 8, []),
            ],
        )
    ]


def test_chunk_blank_lines_inside_and_trailing() -> None:
    ops = parse_patch(P("*** Update File: f", "@@", "", " a", "", "-b", "+c", ""))
    upd = ops[0]
    assert isinstance(upd, UpdateFile)
    # A bare blank line inside a hunk is an empty context line; a trailing one is dropped.
    assert upd.chunks[0].old_lines == ["", "a", "", "b"]
    assert upd.chunks[0].new_lines == ["", "a", "", "c"]


def test_trailing_blank_kept_when_it_is_all_the_old_text() -> None:
    ops = parse_patch(P("*** Update File: f", "@@ x", "+new", ""))
    upd = ops[0]
    assert isinstance(upd, UpdateFile)
    assert upd.chunks[0].old_lines == [""] and upd.chunks[0].new_lines == ["new", ""]


def test_hunk_errors_give_path_and_patch_line() -> None:
    with pytest.raises(PatchError) as info:
        parse_patch(P("*** Update File: f.py", "-a", "w" * 100))
    assert str(info.value) == (
        f"unexpected line 4 in a hunk of f.py: {'w' * 80!r}. Every hunk line "
        "must start with ' ' (context), '-' (removed) or '+' (added)"
    )
    with pytest.raises(PatchError) as info:
        parse_patch(P("*** Update File: f.py", "@@", "-a", "*** End of File", "-b"))
    assert str(info.value) == "expected '@@' to start the next hunk of f.py at patch line 6, got '-b'"
    with pytest.raises(PatchError, match=r"^empty hunk in f.py at patch line 5$"):
        parse_patch(P("*** Update File: f.py", "@@", "-a", "@@"))


# --------------------------------------------------------------------------- matching


def test_exact_header_wins_over_an_earlier_prefix_and_the_last_copy(ws: Path) -> None:
    (ws / "f.py").write_text("end_marker\nx\nend\nx\nend\nx\n")
    apply_patch(P("*** Update File: f.py", "@@ end", "-x", "+X"), ws)
    assert (ws / "f.py").read_text() == "end_marker\nx\nend\nX\nend\nx\n"


def test_header_may_be_a_prefix_of_an_indented_line_with_unicode_quotes(ws: Path) -> None:
    (ws / "f.py").write_text("class A:\n    def run(self, x):\n        say(\u201chi\u201d)\n        return x\n")
    apply_patch(P("*** Update File: f.py", "@@ def run", "-        return x", "+        return 2 * x"), ws)
    assert (ws / "f.py").read_text().endswith("        return 2 * x\n")
    apply_patch(P("*** Update File: f.py", '@@ say("hi', "-        return 2 * x", "+        return 3"), ws)
    assert (ws / "f.py").read_text().endswith("        return 3\n")


def test_first_hunk_header_starts_at_the_top(ws: Path) -> None:
    (ws / "f").write_text("a\nb\na\n")
    apply_patch(P("*** Update File: f", "@@ a", "+x"), ws)
    assert (ws / "f").read_text() == "a\nx\nb\na\n"


def test_later_hunk_uses_the_header_after_the_previous_hunk(ws: Path) -> None:
    (ws / "f").write_text("def f():\n    return 1\ndef g():\n    pass\ndef f():\n    return 1\n")
    apply_patch(
        P("*** Update File: f", "@@ def g():", "-    pass", "+    return 0",
          "@@ def f():", "-    return 1", "+    return 2"),
        ws,
    )  # fmt: skip
    assert (ws / "f").read_text() == "def f():\n    return 1\ndef g():\n    return 0\ndef f():\n    return 2\n"


def test_later_hunk_header_before_the_cursor_is_searched_from_the_top(ws: Path) -> None:
    (ws / "f").write_text("def a():\n    x = 1\ndef b():\n    y = 1\n")
    apply_patch(
        P("*** Update File: f", "@@ def b():", "-    y = 1", "+    y = 2",
          "@@ def a():", "-    x = 1", "+    x = 2"),
        ws,
    )  # fmt: skip
    assert (ws / "f").read_text() == "def a():\n    x = 2\ndef b():\n    y = 2\n"


def test_header_errors_say_where_they_searched(ws: Path) -> None:
    (ws / "f").write_text("class A:\n    x = 1\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "@@ class B", "-    x = 1"), ws)
    assert (
        "in f, hunk 1 (patch line 3): could not find the '@@' context line 'class B' anywhere in "
        "the file. The text after '@@' must be a line of the file, such as a class or function "
        "definition. Re-read the file"
    ) in str(info.value)
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "@@ class A", "@@ def nope", "-    x = 1"), ws)
    assert "'def nope' after the previous @@ line. The text after" in str(info.value)


def test_out_of_order_hunk_found_before_an_insertion(ws: Path) -> None:
    (ws / "f").write_text("a\nb\n")
    apply_patch(P("*** Update File: f", "@@ a", "+x", "@@", "-a", "+A"), ws)
    assert (ws / "f").read_text() == "A\nx\nb\n"


def test_pure_addition_then_more_hunks(ws: Path) -> None:
    (ws / "f").write_text("a\nb\nc\n")
    apply_patch(P("*** Update File: f", "@@ a", "+a2", "@@", "-c", "+C"), ws)
    assert (ws / "f").read_text() == "a\na2\nb\nC\n"


def test_insertions_at_the_same_place_keep_patch_order(ws: Path) -> None:
    (ws / "f").write_text("a\n")
    apply_patch(P("*** Update File: f", "@@", "+zzz", "@@", "+aaa"), ws)
    assert (ws / "f").read_text() == "a\nzzz\naaa\n"


def test_repeated_blocks_are_taken_in_order(ws: Path) -> None:
    (ws / "f").write_text("a\nb\na\nb\n")
    apply_patch(P("*** Update File: f", "@@", " a", "-b", "+B", "@@", " a", "-b", "+C"), ws)
    assert (ws / "f").read_text() == "a\nB\na\nC\n"


def test_end_of_file_hunk_falls_back_to_anywhere(ws: Path) -> None:
    (ws / "f").write_text("x\ny\nz\n")
    apply_patch(P("*** Update File: f", "@@", "-x", "+X", "*** End of File"), ws)
    assert (ws / "f").read_text() == "X\ny\nz\n"


def test_trailing_space_context_stands_for_end_of_file(ws: Path) -> None:
    (ws / "f").write_text("a\nb\n")
    apply_patch(P("*** Update File: f", "@@", " b", "+c", " "), ws)
    assert (ws / "f").read_text() == "a\nb\nc\n"
    apply_patch(P("*** Update File: f", "@@", "-c", "-"), ws)
    assert (ws / "f").read_text() == "a\nb\n"


def test_overlapping_hunks_are_refused(ws: Path) -> None:
    (ws / "f").write_text("a\nb\nc\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "@@", "-a", "-b", "@@", "-a"), ws)
    assert str(info.value) == "hunks in f overlap near line 1; merge them into one"


# --------------------------------------------------------------------------- mismatch messages


def test_mismatch_names_the_closest_window_in_the_loose_view(ws: Path) -> None:
    (ws / "f.py").write_text("def f():\n    a = 1\n    b = 2\n    c = 3\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f.py", "@@", "     a = 1", "-    b = 9", "     c = 3"), ws)
    msg = str(info.value)
    assert msg.startswith("in f.py, hunk 1 (patch line 3): could not find these lines in the file (4 lines):\n")
    assert "Closest match at line 2 (2 of 3 lines equal):\n  |    a = 1\n  |    b = 2\n  |    c = 3\n" in msg
    assert "First difference at line 3: expected '    b = 9', found '    b = 2'." in msg
    assert msg.endswith("Re-read the file and retry with context lines copied exactly from it.")


def test_closest_window_at_the_first_and_at_the_last_line(ws: Path) -> None:
    (ws / "f").write_text("p\nq\nr\ns\n")
    with pytest.raises(PatchError, match=r"Closest match at line 1 \(1 of 2 lines equal\)"):
        apply_patch(P("*** Update File: f", "-p", "-nope"), ws)
    with pytest.raises(PatchError, match=r"Closest match at line 3 \(1 of 2 lines equal\)"):
        apply_patch(P("*** Update File: f", "-nope", "-s"), ws)


def test_closest_ties_prefer_the_first_window(ws: Path) -> None:
    (ws / "f").write_text("k\n1\nk\n2\n")
    with pytest.raises(PatchError, match=r"Closest match at line 1 \(1 of 2 lines equal\)"):
        apply_patch(P("*** Update File: f", "-k", "-3"), ws)


def test_closest_window_of_a_file_shorter_than_the_hunk(ws: Path) -> None:
    (ws / "f").write_text("a\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "-a", "-b", "-c"), ws)
    msg = str(info.value)
    assert "(1 lines):" in msg and "Closest match at line 1 (1 of 3 lines equal):\n  |a\n" in msg
    assert "First difference at line 2: expected 'b', found '<end of file>'." in msg


def test_no_window_scores_but_a_similar_line_exists(ws: Path) -> None:
    (ws / "f").write_text("zero\nalpha beta gamma\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "-", "-alpha beta gamme"), ws)
    msg = str(info.value)
    assert "Closest match" not in msg
    assert "No line matches exactly; the most similar text is at line 1:\n  |zero\n  |alpha beta gamma\n" in msg
    assert "First difference at line 1: expected '', found 'zero'." in msg


def test_nothing_resembles_the_hunk(ws: Path) -> None:
    (ws / "f").write_text("one\ntwo\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "-qqqqqqqq", "-zzzzzzz"), ws)
    msg = str(info.value)
    assert "\nNo line of the file resembles them.\nRe-read the file" in msg
    assert "First difference" not in msg


def test_long_hunks_are_quoted_to_twelve_lines(ws: Path) -> None:
    (ws / "f").write_text("x\n")
    for n, tail in ((12, ""), (13, "\n  ... (1 more lines)")):
        with pytest.raises(PatchError) as info:
            apply_patch(P("*** Update File: f", *(f"-L{i}" for i in range(n))), ws)
        quoted = "\n".join(f"  |L{i}" for i in range(12)) + tail + "\n"
        assert quoted in str(info.value)


# --------------------------------------------------------------------------- files


def test_bom_and_first_character_survive_an_update(ws: Path) -> None:
    (ws / "f").write_bytes("\ufeffabc\ndef\n".encode())
    apply_patch(P("*** Update File: f", "@@", "-def", "+DEF"), ws)
    assert (ws / "f").read_bytes() == "\ufeffabc\nDEF\n".encode()


def test_line_ending_of_new_lines_follows_the_majority_crlf_on_a_tie(ws: Path) -> None:
    (ws / "f").write_bytes(b"a\r\nb\n")
    apply_patch(P("*** Update File: f", "@@", " a", "+x"), ws)
    assert (ws / "f").read_bytes() == b"a\r\nx\r\nb\n"
    (ws / "g").write_bytes(b"a\r\nb\nc\n")
    apply_patch(P("*** Update File: g", "@@", " a", "+x"), ws)
    assert (ws / "g").read_bytes() == b"a\nx\nb\nc\n"  # the hunk's context line too


def test_appending_to_a_file_without_final_newline(ws: Path) -> None:
    (ws / "f").write_bytes(b"a")
    apply_patch(P("*** Update File: f", "@@", "+b"), ws)
    assert (ws / "f").read_bytes() == b"a\nb\n"


def test_same_file_edited_twice_in_one_patch(ws: Path) -> None:
    result = apply_patch(
        P("*** Add File: n.txt", "+one", "*** Update File: n.txt", "@@", "-one", "+two"), ws
    )
    assert (ws / "n.txt").read_text() == "two\n"
    assert result.added == ["n.txt"] and result.modified == ["n.txt"]
    result = apply_patch(P("*** Add File: t.txt", "+tmp", "*** Delete File: t.txt"), ws)
    assert not (ws / "t.txt").exists() and result.deleted == ["t.txt"]
    result = apply_patch(P("*** Add File: n.txt", "+three", "*** Add File: n.txt", "+four"), ws)
    assert (ws / "n.txt").read_text() == "four\n" and result.modified == ["n.txt", "n.txt"]


def test_update_after_delete_in_the_same_patch(ws: Path) -> None:
    (ws / "f").write_text("x\n")
    with pytest.raises(PatchError, match=r"^f was deleted earlier in this patch$"):
        apply_patch(P("*** Delete File: f", "*** Update File: f", "@@", "-x", "+y"), ws)
    assert (ws / "f").read_text() == "x\n"


def test_update_of_a_directory_or_a_fifo(ws: Path) -> None:
    (ws / "d").mkdir()
    with pytest.raises(PatchError, match=r"^d is a directory, not a file$"):
        apply_patch(P("*** Update File: d", "@@", "-x"), ws)
    with pytest.raises(PatchError, match=r"^d is a directory, not a file$"):
        apply_patch(P("*** Delete File: d"), ws)
    os.mkfifo(ws / "pipe")
    with pytest.raises(PatchError, match=r"^pipe is not a regular file$"):
        apply_patch(P("*** Update File: pipe", "@@", "-x"), ws)


def test_creating_below_a_file_is_refused(ws: Path) -> None:
    (ws / "f").write_text("x\n")
    with pytest.raises(PatchError, match=r"^cannot access f/sub/n: Not a directory$"):
        apply_patch(P("*** Add File: f/sub/n", "+y"), ws)
    with pytest.raises(PatchError, match=r"^cannot create g/n: 'g' is a file, not a directory$"):
        apply_patch(P("*** Add File: g", "+y", "*** Add File: g/n", "+z"), ws)
    assert not (ws / "g").exists()
    with pytest.raises(PatchError, match=r"^cannot access f/moved: Not a directory$"):
        apply_patch(P("*** Update File: f", "*** Move to: f/moved", "@@", "-x", "+y"), ws)
    assert (ws / "f").read_text() == "x\n"


def test_new_files_get_the_default_mode(ws: Path) -> None:
    apply_patch(P("*** Add File: n", "+x"), ws)
    assert stat.S_IMODE((ws / "n").stat().st_mode) == 0o666 & ~_umask()


def test_stale_temp_file_is_truncated_and_a_planted_symlink_not_followed(ws: Path, tmp_path: Path) -> None:
    (ws / "a").write_text("a\n")
    (ws / f".a.wb-patch-{os.getpid()}.tmp").write_text("leftover that is longer than the file\n")
    apply_patch(P("*** Update File: a", "@@", "-a", "+b"), ws)
    assert (ws / "a").read_text() == "b\n"
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    os.symlink(outside, ws / f".a.wb-patch-{os.getpid()}.tmp")
    with pytest.raises(PatchError, match=r"^writing a failed: .*; no files were changed$"):
        apply_patch(P("*** Update File: a", "@@", "-b", "+c"), ws)
    assert outside.read_text() == "keep\n" and (ws / "a").read_text() == "b\n"


def test_failed_write_rolls_back_new_and_changed_files(ws: Path) -> None:
    (ws / "b.txt").write_text("old\n")
    (ws / "b.txt").chmod(0o640)
    long_name = "x" * 240  # fits a directory entry; its temp file name does not
    with pytest.raises(PatchError) as info:
        apply_patch(
            P("*** Add File: a.txt", "+new", "*** Update File: b.txt", "@@", "-old", "+changed",
              f"*** Add File: {long_name}", "+z"),
            ws,
        )  # fmt: skip
    assert str(info.value) == f"writing {long_name} failed: File name too long; no files were changed"
    assert sorted(p.name for p in ws.iterdir()) == ["b.txt"]
    assert (ws / "b.txt").read_text() == "old\n"
    assert stat.S_IMODE((ws / "b.txt").stat().st_mode) == 0o640


def test_symlink_into_git_metadata_is_refused_in_any_case(ws: Path) -> None:
    for name in (".git", ".GIT"):
        (ws / name).mkdir()
        (ws / name / "config").write_text("[core]\n")
        link = ws / f"alias{name}"
        os.symlink(name, link)
        with pytest.raises(PatchError) as info:
            apply_patch(P(f"*** Update File: alias{name}/config", "@@", "-[core]", "+[x]"), ws)
        assert str(info.value) == (
            f"path 'alias{name}/config' goes through the symlink 'alias{name}'; apply_patch does not "
            "follow symlinks (they can lead outside the workspace). Edit the file at its real path"
        )
        assert (ws / name / "config").read_text() == "[core]\n"


def test_symlink_escape_message(ws: Path, tmp_path: Path) -> None:
    (ws / "sub").mkdir()
    os.symlink(tmp_path, ws / "sub" / "out")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Add File: out/x", "+y"), ws, cwd=ws / "sub")
    assert str(info.value) == (
        "path 'out/x' goes through the symlink 'sub/out'; apply_patch does not follow symlinks "
        "(they can lead outside the workspace). Edit the file at its real path"
    )
    assert not (tmp_path / "x").exists()


def test_symlinks_are_neither_read_nor_replaced_but_can_be_deleted(ws: Path) -> None:
    (ws / "real.txt").write_text("r\n")
    os.symlink("real.txt", ws / "link")
    for patch in (
        P("*** Update File: link", "*** Move to: new.txt", "@@", "-r", "+R"),
        P("*** Add File: link", "+x"),
    ):
        with pytest.raises(PatchError, match=r"^path 'link' goes through the symlink 'link'"):
            apply_patch(patch, ws)
    with pytest.raises(PatchError, match=r"^cannot move real.txt to link: the destination exists"):
        apply_patch(P("*** Update File: real.txt", "*** Move to: link", "@@", "-r", "+R"), ws)
    assert (ws / "real.txt").read_text() == "r\n" and os.readlink(ws / "link") == "real.txt"
    assert not (ws / "new.txt").exists()
    # A failed patch restores a link it deleted.
    with pytest.raises(PatchError, match=r"^writing"):
        apply_patch(P("*** Delete File: link", "*** Add File: " + "x" * 240, "+z"), ws)
    assert os.readlink(ws / "link") == "real.txt"
    assert apply_patch(P("*** Delete File: link"), ws).deleted == ["link"]
    assert not os.path.lexists(ws / "link") and (ws / "real.txt").read_text() == "r\n"


def test_root_that_is_not_a_directory(ws: Path) -> None:
    f = ws / "file"
    f.write_text("x")
    with pytest.raises(PatchError, match=rf"^workspace root {str(f)!r} is not a directory$"):
        apply_patch(P("*** Add File: a", "+x"), f)
    with pytest.raises(PatchError, match=r"^working directory '/' is outside the workspace root$"):
        apply_patch(P("*** Add File: a", "+x"), ws, cwd=Path("/"))


# --------------------------------------------------------------------------- argv forms


def test_extract_refuses_non_string_argv_and_other_programs() -> None:
    patch = P("*** Add File: a", "+x")
    script = f"apply_patch <<'EOF'\n{patch}\nEOF"
    assert extract_patch_from_argv(["apply_patch", 5]) is None  # type: ignore[list-item]
    assert extract_patch_from_argv(["python", "-c", script]) is None
    assert extract_patch_from_argv(["bash", "-x", script]) is None
    assert extract_patch_with_cwd(["bash", "-c", script]) == (patch, None)


@pytest.mark.parametrize(
    ("prefix", "cd"),
    [("cd sub/dir && ", "sub/dir"), ("cd 'my dir' && ", "my dir"), ('cd "a b" && ', "a b"), ("cd x&&", "x")],
)
def test_extract_returns_the_cd_directory_unquoted(prefix: str, cd: str) -> None:
    patch = P("*** Add File: a", "+x")
    assert extract_patch_with_cwd(["bash", "-lc", f"{prefix}apply_patch <<'EOF'\n{patch}\nEOF"]) == (patch, cd)


# --------------------------------------------------------------------------- second round


def test_parse_blank_before_first_hunk_delete_with_one_old_line_and_move_target() -> None:
    ops = parse_patch(
        P("*** Update File: f", "", "@@", "-a", "+b", "*** Delete File: g", "-old", "*** Add File: h", "+x")
    )
    assert ops == [UpdateFile("f", [Chunk(None, ["a"], ["b"], False, 4, [])]), DeleteFile("g"), AddFile("h", "x\n")]
    with pytest.raises(PatchError, match=r"^move target '\.\./x' contains '\.\.'"):
        parse_patch(P("*** Update File: f", "*** Move to: ../x", "@@", "-a"))
    with pytest.raises(PatchError, match=r"^the patch contains no file operations$"):
        parse_patch(P(""))
    with pytest.raises(PatchError, match="first line"):
        parse_patch("X" + P("*** Add File: a", "+x"))
    with pytest.raises(PatchError) as info:
        parse_patch(P("*** Update File: f", "@@", "-a", "*** End of File", "q" * 100))
    assert str(info.value).endswith(f"got {'q' * 80!r}")


def test_result_paths_lists_each_path_once() -> None:
    from workbench.agent.patch import PatchResult

    r = PatchResult(added=["a", "b"], modified=["a"], deleted=["d"], moved=[("m", "b"), ("m2", "n")])
    assert r.paths() == ["a", "b", "m", "m2", "n", "d"]


def test_bom_line_matched_by_the_first_hunk_line(ws: Path) -> None:
    (ws / "f").write_bytes("\ufeffabc\ndef\n".encode())
    apply_patch(P("*** Update File: f", "@@", "-abc", "+x"), ws)
    assert (ws / "f").read_bytes() == "\ufeffx\ndef\n".encode()


def test_prefix_header_is_searched_after_the_previous_hunk(ws: Path) -> None:
    (ws / "f").write_text("def a():\n    x = 1\ndef b():\n    y = 1\ndef a_late():\n    x = 1\n")
    apply_patch(
        P("*** Update File: f", "@@ def b", "-    y = 1", "+    y = 2", "@@ def a", "-    x = 1", "+    x = 3"), ws
    )
    assert (ws / "f").read_text() == "def a():\n    x = 1\ndef b():\n    y = 2\ndef a_late():\n    x = 3\n"


def test_trailing_space_context_after_two_lines_and_at_end_of_file(ws: Path) -> None:
    (ws / "f").write_text("a\nb\n")
    apply_patch(P("*** Update File: f", "@@", " a", " b", "+c", " "), ws)
    assert (ws / "f").read_text() == "a\nb\nc\n"
    (ws / "g").write_text("x\ny\nx\n")
    apply_patch(P("*** Update File: g", "@@", "-x", "+X", " ", "*** End of File"), ws)
    assert (ws / "g").read_text() == "x\ny\nX\n"


def test_closest_match_edges(ws: Path) -> None:
    (ws / "f").write_text("p\nq\nr\n")
    with pytest.raises(PatchError) as info:  # a window may not run past the end of the file
        apply_patch(P("*** Update File: f", "-r", "-zz"), ws)
    assert "Closest match" not in str(info.value)
    (ws / "g").write_text("q\na\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: g", "-a", "-x", "-y"), ws)
    assert "Closest match" not in str(info.value)
    (ws / "h").write_text("a\nb\nc\nd\n")
    with pytest.raises(PatchError) as info:  # before the cursor still counts
        apply_patch(P("*** Update File: h", "@@", "-c", "+C", "@@", "-a", "-zz"), ws)
    assert "Closest match at line 1 (1 of 2 lines equal):" in str(info.value)
    (ws / "u").write_text("say(\u201chi\u201d)\nw\n")
    with pytest.raises(PatchError, match=r"Closest match at line 1 \(1 of 2 lines equal\)"):
        apply_patch(P("*** Update File: u", '-say("hi")', "-nope"), ws)


def test_closest_ignores_lines_too_common_to_place_the_hunk(ws: Path) -> None:
    (ws / "f").write_text("x\n" * 2000 + "end\n")
    with pytest.raises(PatchError, match=r"Closest match at line 1 \(1 of 2 lines equal\)"):
        apply_patch(P("*** Update File: f", "-x", "-nope"), ws)
    (ws / "g").write_text("x\n" * 2001 + "end\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: g", "-x", "-nope"), ws)
    assert "Closest match" not in str(info.value)


def test_first_difference_is_counted_from_the_closest_window(ws: Path) -> None:
    (ws / "f").write_text("w\nx\na\nq\nc\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "-a", "-x", "-c"), ws)
    msg = str(info.value)
    assert "Closest match at line 3 (2 of 3 lines equal):" in msg
    assert "First difference at line 4: expected 'x', found 'q'." in msg


def test_fuzzy_search_tries_only_the_first_three_lines(ws: Path) -> None:
    (ws / "f").write_text("alpha beta gamma delta\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", "-q1", "-q2", "-q3", "-alpha beta gamma delte"), ws)
    assert "No line of the file resembles them." in str(info.value)


def test_exactly_twelve_lines_are_quoted_without_a_remainder(ws: Path) -> None:
    (ws / "f").write_text("x\n")
    with pytest.raises(PatchError) as info:
        apply_patch(P("*** Update File: f", *(f"-L{i}" for i in range(12))), ws)
    assert "more lines" not in str(info.value)


def test_extract_keeps_an_unquoted_cd_as_is() -> None:
    patch = P("*** Add File: a", "+x")
    assert extract_patch_with_cwd(["bash", "-lc", f"cd Xdir && apply_patch <<'EOF'\n{patch}\nEOF"]) == (patch, "Xdir")


def test_remove_file_follows_no_symlink(ws: Path, tmp_path: Path) -> None:
    from workbench.agent.patch import remove_file

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".t.wb-patch-1.tmp").write_text("keep")
    (ws / "sub").mkdir()
    (ws / "sub" / ".t.wb-patch-1.tmp").write_text("stale")
    os.symlink(outside, ws / "link")
    assert remove_file(ws, "link/.t.wb-patch-1.tmp") is False
    assert (outside / ".t.wb-patch-1.tmp").read_text() == "keep"
    assert remove_file(ws, "sub/.t.wb-patch-1.tmp") is True
    assert not (ws / "sub" / ".t.wb-patch-1.tmp").exists()
    assert remove_file(ws, "sub/.t.wb-patch-1.tmp") is False  # gone already
    assert remove_file(ws, "missing/x") is False
    assert remove_file(ws, "../outside/.t.wb-patch-1.tmp") is False
    assert remove_file(ws / "nope", "x") is False
    assert (outside / ".t.wb-patch-1.tmp").exists()
