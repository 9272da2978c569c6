"""Edge cases of the diff/hunk engine that mutation testing found untested.

The strongest check is a round trip on real `git diff` output of many kinds of change: the
fast parser, the line-by-line parser and the renderer must agree with git byte for byte
(docs/testing.md, "Mutation testing").
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from tests.diff_support import expected_id
from workbench.core.diff_hunk import DiffLine, Hunk
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.diff_parse import parse_git_fast, parse_unified, parse_unified_exact
from workbench.core.diff_render import diff_stat_text, word_diff
from workbench.core.git_paths import diff_git_paths, header_path, quote_path, unquote_path
from workbench.core.git_runner import git_env, git_out, run_git, stderr_text
from workbench.core.worktree_diff import compute_diff, resolve_commit, worktree_root
from workbench.errors import GitError, NotFound, UsageError

# Paths git must quote: tab, backslash, DEL, a newline, an undecodable byte.
ODD_NAMES = ["tab\there.txt", "back\\slash.txt", "del\x7f.txt", "new\nline.txt"]
LATIN1 = b"caf\xe9.txt"


def _slow(text: str) -> list[FileDiff]:
    """The line-by-line parser."""
    return parse_unified_exact(text)


@pytest.fixture(scope="module")
def changed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo whose staged changes cover every kind git prints."""
    r = tmp_path_factory.mktemp("rt") / "r"
    files = {
        "mod.txt": "one\ntwo\n\nthree\nfour\nfive\nsix\nseven\n",
        "del.txt": "gone\n",
        "ren.txt": "".join(f"{i}\n" for i in range(30)),
        "cp_src.txt": "".join(f"copy {i}\n" for i in range(30)),
        "exe.sh": "x\n",
        "tolink": "plain\n",
        "crlf.txt": "a\r\nb\r\n",
        "nonl.txt": "nonl",
        "b.bin": "bin\0ary",
        "sp ace.txt": "z\n",
        'qu"ote.txt': "q\n",
        "x from y.txt": "".join(f"from {i}\n" for i in range(20)),
        "plain.txt": "".join(f"plain {i}\n" for i in range(20)),
        "empty": "",
        "rewrite.txt": "".join(f"old {i}\n" for i in range(20)),
        "many.txt": "".join(f"line {i}\n" for i in range(60)),
        **{n: f"{n!r}\n" for n in ODD_NAMES},
    }
    make_repo(r, files)
    (r / os.fsdecode(LATIN1)).write_bytes(b"latin\n")
    git(r, "add", "-A")
    git(r, "commit", "-qm", "more")
    (r / "mod.txt").write_text("one\nTWO\n\nthree\nfour\nfive\nsix\nSEVEN\n")
    (r / "del.txt").unlink()
    (r / "empty").unlink()
    git(r, "mv", "ren.txt", "renamed.txt")
    with (r / "renamed.txt").open("a") as f:
        f.write("30\n")
    (r / "cp_dst.txt").write_text((r / "cp_src.txt").read_text())
    with (r / "cp_src.txt").open("a") as f:
        f.write("copy 30\n")
    (r / "exe.sh").chmod(0o755)
    (r / "tolink").unlink()
    (r / "tolink").symlink_to("mod.txt")
    (r / "crlf.txt").write_bytes(b"a\r\nB\r\n")
    (r / "nonl.txt").write_text("nonl2")
    (r / "b.bin").write_bytes(b"bin\0ary2")
    (r / "sp ace.txt").write_text("Z\n")
    (r / 'qu"ote.txt').write_text("Q\n")
    (r / "x from y.txt").rename(r / "a to b.txt")
    (r / "plain.txt").rename(r / "tab\tnow.txt")
    (r / "rewrite.txt").write_text("".join(f"brand new {i}\n" for i in range(20)))
    (r / "added.txt").write_text("new\n")
    (r / "many.txt").write_text("".join(f"line {i}{'!' if i % 15 == 7 else ''}\n" for i in range(60)))
    (r / "\u00e9t\u00e9.txt").write_text("\u00e9t\u00e9\n")
    (r / os.fsdecode(LATIN1)).write_bytes(b"latin2\n")
    for n in ODD_NAMES:
        (r / n).write_text(f"{n!r} changed\n")
    git(r, "add", "-A")
    return r


def _git_diff(repo: Path, *opts: str) -> str:
    out = subprocess.run(
        ["git", "-c", "core.quotePath=false", "diff", "--cached", "--no-color", "--src-prefix=a/",
         "--dst-prefix=b/", *opts, "HEAD"],
        cwd=repo, capture_output=True, check=True,
    ).stdout
    return out.decode("utf-8", "surrogateescape")


def _without_typechange_index(raw: str) -> str:
    # Two known, harmless differences from git; everything else must come back byte for byte:
    # a type change renders as delete + add without git's index lines (`git apply` does not
    # need them), and an undecodable byte in a name is octal-quoted where git prints it raw.
    raw = re.sub(r"(diff --git a/tolink b/tolink\n(?:deleted|new) file mode \d+\n)index \S+\n", r"\1", raw)
    name = os.fsdecode(LATIN1)
    for side in ("a/", "b/"):
        raw = raw.replace(side + name, quote_path(side + name))
    return raw


OPTION_SETS = [
    ("-M",),
    ("-M", "-C", "--find-copies-harder"),
    ("--binary", "-M"),
    ("-U0",),
    ("--no-renames",),
    ("-U1", "-B", "-M"),
]


@pytest.mark.parametrize("opts", OPTION_SETS, ids=" ".join)
def test_git_output_round_trips_through_both_parsers(changed_repo: Path, opts: tuple[str, ...]) -> None:
    raw = _git_diff(changed_repo, *opts)
    expected = _without_typechange_index(raw)
    fast = parse_git_fast(raw)
    slow = _slow(raw)
    # Text before the first file header is ignored (and makes the fast parser step aside).
    assert parse_git_fast("preamble\n" + raw) is None and parse_unified("preamble\n" + raw) == slow
    if "--binary" in opts:
        assert fast is None  # binary patches go the careful way
    else:
        assert fast is not None and fast == slow
        assert [f.to_json() for f in fast] == [f.to_json() for f in slow]
    files = parse_unified(raw)
    assert files == slow
    assert "".join(f.render() for f in files) == expected
    assert Diff("x", slow).unified() == expected
    # Rendering from built lines gives the same bytes as from the raw text.
    for f in slow:
        for h in f.hunks:
            assert h.lines is not None
    assert "".join(f.render() for f in slow) == expected


def test_statuses_paths_and_modes_of_every_kind(changed_repo: Path) -> None:
    files = {f.path: f for f in parse_unified(_git_diff(changed_repo, "-M", "-C", "--find-copies-harder"))}
    got = {p: (f.status, f.old_path) for p, f in files.items()}
    assert got["added.txt"] == ("added", None)
    assert got["del.txt"] == ("deleted", None)
    assert got["empty"] == ("deleted", None)  # no ---/+++ lines: the name comes from `diff --git`
    assert got["renamed.txt"] == ("renamed", "ren.txt")
    assert got["cp_dst.txt"] == ("copied", "cp_src.txt")
    assert got["a to b.txt"] == ("renamed", "x from y.txt")
    assert got["tab\tnow.txt"] == ("renamed", "plain.txt")
    assert got["tolink"] == ("typechange", None)
    assert got[os.fsdecode(LATIN1)] == ("modified", None)
    for n in ODD_NAMES:
        assert got[n] == ("modified", None)
    assert files["exe.sh"].mode_change == ("100644", "100755") and not files["exe.sh"].hunks
    assert files["mod.txt"].old_mode == files["mod.txt"].new_mode == "100644"
    assert files["added.txt"].old_mode is None and files["added.txt"].new_mode == "100644"
    assert files["del.txt"].new_mode is None and files["del.txt"].old_mode == "100644"
    assert files["tolink"].is_symlink and files["tolink"].mode_change == ("100644", "120000")
    assert files["b.bin"].binary and files["renamed.txt"].similarity is not None
    assert files["mod.txt"].index is not None and re.fullmatch(r"[0-9a-f]+\.\.[0-9a-f]+", files["mod.txt"].index)
    js = files[os.fsdecode(LATIN1)].to_json()
    assert js["path"] == "caf\ufffd.txt" and js["old_path"] is None
    assert files["renamed.txt"].to_json()["old_path"] == "ren.txt"
    assert files["exe.sh"].to_json()["mode_change"] == ["100644", "100755"]
    assert (files["exe.sh"].to_json()["old_mode"], files["exe.sh"].to_json()["new_mode"]) == ("100644", "100755")
    rw = {f.path: f for f in parse_unified(_git_diff(changed_repo, "-B", "-M"))}["rewrite.txt"]
    assert rw.status == "modified" and rw.added == rw.removed == 20


def test_git_quoting_of_odd_paths_matches_git(changed_repo: Path) -> None:
    raw = _git_diff(changed_repo, "-M")
    for name in ODD_NAMES:
        assert f"diff --git {quote_path('a/' + name)} {quote_path('b/' + name)}\n" in raw
    assert quote_path("a/" + os.fsdecode(LATIN1)) == '"a/caf\\351.txt"'  # git: raw byte; same file
    assert quote_path("a/tab\there") == '"a/tab\\there"'
    assert quote_path("x\x01\x1f\x7fy") == '"x\\001\\037\\177y"'
    assert quote_path("\xa0\u00e9\u4e2d") == "\xa0\u00e9\u4e2d"  # printable non-ASCII stays as it is
    assert quote_path(" ~") == " ~"  # space (32) and printable ASCII stay as they are
    assert quote_path("\udc80\udcff") == '"\\200\\377"'
    assert quote_path("c1\x80\x9f") == '"c1\\302\\200\\302\\237"'  # C1 controls: their UTF-8 bytes
    assert quote_path("\udc7f") == "\udc7f"  # not an undecodable byte: surrogateescape never makes it
    assert quote_path('q"b\\') == '"q\\"b\\\\"'


@pytest.mark.parametrize(
    ("quoted", "plain"),
    [
        ('""', ""),
        ('"a"', "a"),
        ('x"', 'x"'),
        ('"x', '"x'),
        ('"\\303\\251"', "\u00e9"),
        ('"\\377"', "\udcff"),
        ('"\\400"', "400"),
        ('"\\12x"', "12x"),
        ('"\\t\\n\\q"', "\t\nq"),
        ('"a\\"', "a\\"),
        ('"\\0123"', "\n3"),
        ('"\u00e9"', "\u00e9"),
    ],
)
def test_unquote(quoted: str, plain: str) -> None:
    assert unquote_path(quoted) == plain


@pytest.mark.parametrize(
    ("rest", "paths"),
    [
        ("a/x b/x", ("x", "x")),
        ("x x", ("x", "x")),
        ("a/x c/x", (None, None)),
        ("a/xy b/x", (None, None)),
        ("a/x_b/x", (None, None)),
        ('"a/t\\tz" b/plain', ("t\tz", "plain")),
        ('"a/t\\tz" "b/q\\tz"', ("t\tz", "q\tz")),
        ('a/plain "b/q\\tz"', ("plain", "q\tz")),
        ('a/p q "b/q\\tz"', ("p q", "q\tz")),
        ('x/plain "y/q"', ("x/plain", "y/q")),
        # The first quoted name ends at its first unescaped quote; spaces after it are dropped.
        ('"a/a\\"b"  b/rest', ('a"b', "rest")),
        ('"a/ab"b/x ', ("ab", "x ")),
        ('"a/\\\\" b/y', ("\\", "y")),
        ('"a/open', (None, None)),
        ('x"y"', (None, None)),
    ],
)
def test_diff_git_paths(rest: str, paths: tuple[str | None, str | None]) -> None:
    assert diff_git_paths(rest) == paths


def test_header_path() -> None:
    assert header_path('"b/q\\tz"\tjunk', "b/") == "q\tz"
    assert header_path("b/sp ace.txt\t", "b/") == "sp ace.txt"
    assert header_path("b/a\tb\tc", "b/") == "a"
    assert header_path("/dev/null", "a/") is None
    assert header_path('"/dev/null"', "a/") is None
    assert header_path('"b/open', "b/") == '"b/open'  # no closing quote: taken as it is


# --------------------------------------------------------------------------- plain diffs


def test_plain_added_and_deleted_files_render_as_git_patches() -> None:
    text = (
        "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n"
        "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-y\n"
        "--- a/same.txt\n+++ b/same.txt\n@@ -1 +1 @@\n-p\n+q\n"
    )
    added, deleted, modified = parse_unified(text)
    assert (added.path, added.status, added.new_mode) == ("new.txt", "added", None)
    assert (deleted.path, deleted.status, deleted.old_mode) == ("old.txt", "deleted", None)
    assert (modified.path, modified.status, modified.old_path) == ("same.txt", "modified", None)
    assert added.render() == (
        "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n"
    )
    assert deleted.render() == (
        "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-y\n"
    )


def test_binary_add_and_delete_are_recognised_without_mode_lines() -> None:
    text = (
        "diff --git a/n.bin b/n.bin\nBinary files /dev/null and b/n.bin differ\n"
        "diff --git a/o.bin b/o.bin\nBinary files a/o.bin and /dev/null differ\n"
        "diff --git a/m.bin b/m.bin\nBinary files a/m.bin and b/m.bin differ\n"
    )
    for files in (parse_unified(text), _slow(text)):
        assert [(f.path, f.status, f.binary) for f in files] == [
            ("n.bin", "added", True), ("o.bin", "deleted", True), ("m.bin", "modified", True)
        ]


def test_rename_and_copy_headers_without_similarity() -> None:
    text = (
        "diff --git a/x from y b/a to b\nrename from x from y\nrename to a to b\n"
        "diff --git a/s b/t\nsimilarity index n/a%\ncopy from s\ncopy to t\n"
        "diff --git a/u b/v\ndissimilarity index 12%\nrename from u\nrename to v\n"
    )
    ren, cp, dis = parse_unified(text)
    assert (ren.status, ren.old_path, ren.path, ren.similarity) == ("renamed", "x from y", "a to b", None)
    assert (cp.status, cp.old_path, cp.path, cp.similarity) == ("copied", "s", "t", None)
    assert (dis.status, dis.similarity) == ("renamed", 12)
    assert ren.render() == "diff --git a/x from y b/a to b\nrename from x from y\nrename to a to b\n"
    assert cp.render() == "diff --git a/s b/t\ncopy from s\ncopy to t\n"


def test_git_binary_patch_payload_is_kept_up_to_the_next_file() -> None:
    text = (
        "diff --git a/b.bin b/b.bin\nindex 1..2 100644\nGIT binary patch\nliteral 3\nKcmZ?wFa7|A\n\n"
        "literal 3\nKcmZ?wFa7|B\n\n"
        "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1 +1 @@\n-a\n+b\n"
    )
    b, t = parse_unified(text)
    assert b.binary and b.binary_patch == "literal 3\nKcmZ?wFa7|A\n\nliteral 3\nKcmZ?wFa7|B\n\n"
    assert (t.path, t.added, t.removed) == ("t.txt", 1, 1)
    assert Diff("x", [b, t]).unified() == text


def test_hunk_errors_name_the_line() -> None:
    with pytest.raises(UsageError) as info:
        parse_unified("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n?" + "q" * 70 + "\n")
    assert str(info.value) == f"diff line 6 does not fit the hunk '@@ -1,2 +1,2 @@': {'?' + 'q' * 59!r}"
    long_header = "@@ -1,3 +1,3 @@ " + "h" * 80
    with pytest.raises(UsageError) as info:
        parse_unified(f"--- a/x\n+++ b/x\n{long_header}\n a\n")
    assert str(info.value) == f"diff ends inside the hunk {long_header[:60]!r}"
    with pytest.raises(UsageError) as info:
        parse_unified("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n@@ -q " + "w" * 90 + "\n")
    assert str(info.value) == f"malformed hunk header at diff line 6: {('@@ -q ' + 'w' * 90)[:80]!r}"


def test_no_newline_marks_counts_and_ids_on_both_parsers() -> None:
    text = (
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\\ No newline at end of file\n"
        "diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1,2 +1,2 @@\n g\n-h\n\\ No newline at end of file\n+H\n"
        "\\ No newline at end of file\n"
    )
    fast = parse_git_fast(text)
    assert fast is not None and fast == _slow(text)
    # A bare empty line (an empty context line, as with diff.suppressBlankEmpty) on the slow path.
    text += "diff --git a/e b/e\n--- a/e\n+++ b/e\n@@ -1,3 +1,4 @@\n x\n\n-y\n+Y\n+z\n"
    slow = parse_unified(text)
    assert slow == _slow(text)
    f, g, e = slow
    assert [(ln.kind, ln.text, ln.old_no, ln.new_no, ln.no_newline) for ln in f.hunks[0].lines] == [
        (" ", "a", 1, 1, False), ("-", "b", 2, None, False), ("+", "B", None, 2, False), (" ", "c", 3, 3, True)
    ]
    assert [(ln.kind, ln.no_newline) for ln in g.hunks[0].lines] == [(" ", False), ("-", True), ("+", True)]
    assert (g.added, g.removed, e.added, e.removed) == (1, 1, 2, 1)
    assert [(ln.kind, ln.text, ln.old_no, ln.new_no) for ln in e.hunks[0].lines][1] == (" ", "", 2, 2)
    # A context line's missing newline does not change what the hunk changes: same id as without it.
    bare = parse_unified(text.replace(" c\n\\ No newline at end of file\n", " c\n"))[0]
    assert bare.hunks[0].id == f.hunks[0].id
    # A changed line's mark does.
    marked = parse_unified(text.replace("-h\n\\ No newline at end of file\n", "-h\n"))[1]
    assert marked.hunks[0].id != g.hunks[0].id
    assert Diff("x", slow).unified() == text.replace(" x\n\n-y", " x\n \n-y")  # rendered with its space


def test_wire_rows_from_raw_text_equal_rows_from_built_lines() -> None:
    text = (
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n a\r\n-b\r\n\\ No newline at end of file\n"
        "+\u00e9\udcff\n\\ No newline at end of file\n c\n-d\n+D\n"
    )
    text = text.replace(" c\n-d\n+D\n", "")
    text = text.replace("@@ -1,4 +1,4 @@", "@@ -1,2 +1,2 @@")
    lazy = parse_unified(text)[0].hunks[0]
    built = parse_unified(text)[0].hunks[0]
    assert built.lines  # builds DiffLine objects
    rows = [
        [" ", "a", 1, 1, {"no_newline": False, "cr": True}],
        ["-", "b", 2, None, {"no_newline": True, "cr": True}],
        ["+", "\u00e9\ufffd", None, 2, {"no_newline": True, "cr": False}],
    ]
    assert lazy.rows() == rows and built.rows() == rows
    # A mark with no line before it is dropped, from raw lines as from built ones.
    orphan = ["\\ No newline at end of file", "+x\r"]
    assert Hunk("r", "@@ -1,0 +1 @@", 1, 0, 1, 1, raw=list(orphan)).rows() == [
        ["+", "x", None, 1, {"no_newline": False, "cr": True}]
    ]
    assert Hunk("r", "@@ -1,0 +1 @@", 1, 0, 1, 1, raw=list(orphan)).lines == [DiffLine("+", "x", None, 1, False, True)]
    assert Hunk("r", "@@ -1,0 +1 @@", 1, 0, 1, 1, raw=[orphan[0], "+x"]).rows() == [["+", "x", None, 1]]


def test_hunk_objects_built_by_hand() -> None:
    h = Hunk("my-id", "@@ -3 +3,2 @@ def f():", 3, 1, 3, 2, [DiffLine("-", "a", 3, None),
             DiffLine("+", "b", None, 3, cr=True), DiffLine("+", "c", None, 4, no_newline=True)])  # fmt: skip
    assert h.id == "my-id" and h.section == " def f():"
    assert h.render() == "@@ -3 +3,2 @@ def f():\n-a\n+b\r\n+c\n\\ No newline at end of file\n"
    empty = Hunk("e", "@@ -1,0 +1,0 @@", 1, 0, 1, 0)
    assert empty.lines == [] and empty.render() == "@@ -1,0 +1,0 @@\n" and empty.section == ""
    from_text = Hunk("t", "@@ -1 +1 @@", 1, 1, 1, 1, text="-a\n+b")
    from_raw = Hunk("r", "@@ -1 +1 @@", 1, 1, 1, 1, raw=["-a", "+b", ""])
    assert from_text.render() == "@@ -1 +1 @@\n-a\n+b\n"
    assert from_raw.render() == "@@ -1 +1 @@\n-a\n+b\n \n"
    assert Hunk("t", "@@ -1,0 +1,0 @@", 1, 0, 1, 0, text="").render() == "@@ -1,0 +1,0 @@\n"
    assert from_text.rows() == [["-", "a", 1, None], ["+", "b", None, 1]]
    with pytest.raises(ValueError, match=r"without an id"):
        _ = Hunk(None, "@@ -1 +1 @@", 1, 1, 1, 1, text="-a").id
    assert h == Hunk("my-id", h.header, 3, 1, 3, 2, list(h.lines)) and h != from_text
    assert (h == "x") is False


def test_size_hint_is_a_byte_estimate() -> None:
    text = "-abc\n+d"
    assert Hunk("t", "@@", 1, 1, 1, 1, text=text).size_hint() == len(text) + 24 * 2
    assert Hunk("t", "@@", 1, 1, 1, 1, text="+\u00e9").size_hint() == 6 * 2 + 24
    assert Hunk("r", "@@", 1, 1, 1, 1, raw=["-abc", "+\u00e9"]).size_hint() == (4 + 24) + (6 * 2 + 24)
    built = Hunk("l", "@@", 1, 1, 1, 1, [DiffLine("-", "abc", 1, None), DiffLine("+", "\u00e9", None, 1)])
    assert built.size_hint() == (3 + 24) + (6 + 24)
    lazy = parse_unified("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-abc\n+d\n")[0].hunks[0]
    before = lazy.size_hint()
    assert before > 0 and lazy.lines and lazy.size_hint() == (3 + 24) + (1 + 24)


def test_identical_hunks_in_one_file_are_numbered() -> None:
    body = "@@ -1 +1 @@\n-a\n+b\n"
    text = "--- a/x\n+++ b/x\n" + body + body.replace("-1 +1", "-5 +5")
    h1, h2 = parse_unified(text)[0].hunks
    changed = "\0-a\0+b"
    assert h1.id == hashlib.sha1(("x" + changed).encode()).hexdigest()[:12]
    assert h2.id == hashlib.sha1(("x" + changed + "\0#1").encode()).hexdigest()[:12]
    # An undecodable byte in the path is hashed as that byte.
    odd = parse_unified("--- a/p\udcff\n+++ b/p\udcff\n@@ -1 +1 @@\n-a\n+b\n")[0].hunks[0]
    assert odd.id == hashlib.sha1(b"p\xff\0-a\0+b").hexdigest()[:12]


# --------------------------------------------------------------------------- stat text


def _fd(path: str, added: int, removed: int, *, old: str | None = None, binary: bool = False) -> FileDiff:
    return FileDiff(path, old, "renamed" if old else "modified", binary, added, removed, [])


def test_diff_stat_scales_bars_and_truncates_names() -> None:
    files = [_fd("a.py", 200, 100), _fd("b.py", 1, 0), _fd("c.py", 0, 1), _fd("img.png", 0, 0, binary=True),
             _fd("d" * 60 + ".txt", 3, 0)]  # fmt: skip
    text = diff_stat_text(Diff("x", files), width=80)
    name_w = 40
    bar_w = 80 - name_w - 3 - 5
    assert text.splitlines() == [
        f" {'a.py'.ljust(name_w)} | 300 " + "+" * round(200 * bar_w / 300) + "-" * round(100 * bar_w / 300),
        f" {'b.py'.ljust(name_w)} |   1 +",
        f" {'c.py'.ljust(name_w)} |   1 -",
        f" {'img.png'.ljust(name_w)} | Bin",
        f" {'...' + ('d' * 60 + '.txt')[-(name_w - 3):]} |   3 +",
        " 5 files changed, 204 insertions(+), 101 deletions(-)",
    ]


def test_diff_stat_small_counts_and_singulars() -> None:
    one = diff_stat_text(Diff("x", [_fd("f", 1, 0)]))
    assert one == " f | 1 +\n 1 file changed, 1 insertion(+)\n"
    assert diff_stat_text(Diff("x", [_fd("f", 0, 1)])).endswith(" 1 file changed, 1 deletion(-)\n")
    assert diff_stat_text(Diff("x", [_fd("f", 0, 0)])).endswith(
        " 1 file changed, 0 insertions(+), 0 deletions(-)\n"
    )
    wide = diff_stat_text(Diff("x", [_fd("f", 30, 0)]), width=60)
    assert wide.splitlines()[0] == " f | 30 " + "+" * 30
    # 12 columns for the bar: 30 of 31 lines is 12 pluses; the one removal still shows.
    narrow = diff_stat_text(Diff("x", [_fd("f", 30, 1), _fd("g", 1, 0)]), width=20)
    assert narrow.splitlines()[:2] == [" f | 31 " + "+" * 12 + "-", " g |  1 +"]


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        ("p.txt", "q.txt", "p.txt => q.txt"),
        ("src/a/x.py", "src/b/x.py", "src/{a => b}/x.py"),
        ("a/b/c", "a/b/d", "a/b/{c => d}"),
        ("x/old", "y/old", "{x => y}/old"),
        ("a/b/c/d", "a/x/y/c/d", "a/{b => x/y}/c/d"),
        ("a/b", "a/c/d/b", "a/{b => c/d/b}"),
        ("k/same", "k/same2", "k/{same => same2}"),
    ],
)
def test_stat_names_renames_like_git(old: str, new: str, shown: str) -> None:
    assert diff_stat_text(Diff("x", [_fd(new, 0, 0, old=old)])).splitlines()[0] == f" {shown} | 0"


# --------------------------------------------------------------------------- git plumbing


def test_git_errors_name_the_subcommand_and_keep_the_last_lines(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    with pytest.raises(GitError) as info:
        run_git(repo, ["-c", "x.y=z", "--no-pager", "frobnicate"])
    assert str(info.value).startswith(f"git frobnicate failed in {repo}: ")
    with pytest.raises(GitError, match=r"^git command failed in "):
        run_git(repo, ["-c", "x.y=z", "--bogus-flag"])

    def proc(err: bytes, out: bytes = b"", code: int = 1) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess([], code, out, err)

    assert stderr_text(proc(b"hint: try this\nerror: one\n\n  \nfatal: two\nhint: x")) == "error: one; fatal: two"
    assert stderr_text(proc(b"1\n2\n3\n4\n5\n6")) == "3; 4; 5; 6"
    assert stderr_text(proc(b"", b"from stdout \xff")) == "from stdout \ufffd"
    assert stderr_text(proc(b"\xfe bad")) == "\ufffd bad"
    assert stderr_text(proc(b"  ", code=3)) == "exit status 3"


def test_resolve_commit_says_what_was_wrong(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    with pytest.raises(NotFound) as info:
        resolve_commit(repo, "nope")
    assert str(info.value).startswith(f"base 'nope' is not a commit in {repo}")
    assert info.value.hint == "check the session's base commit"
    with pytest.raises(UsageError, match=r"^invalid base '-x'"):
        resolve_commit(repo, "-x")
    with pytest.raises(NotFound, match=r"^target 'HEAD:README.md' is not a commit"):
        resolve_commit(repo, "HEAD:README.md", "target")


def _wt(tmp_path: Path) -> tuple[Path, str]:
    files = {"a.txt": "a\n", "[ab].txt": "g\n", "b.txt": "".join(f"{i}\n" for i in range(20))}
    repo = make_repo(tmp_path / "repo", files)
    return repo, git(repo, "rev-parse", "HEAD").strip()


def test_compute_diff_context_bounds_digest_and_literal_paths(tmp_path: Path) -> None:
    repo, base = _wt(tmp_path)
    (repo / "a.txt").write_text("A\n")
    (repo / "[ab].txt").write_text("G\n")
    assert compute_diff(repo, base, context=10_000).files
    for bad in (10_001, -1, True, "3"):
        with pytest.raises(UsageError, match=r"^invalid context"):
            compute_diff(repo, base, context=bad)  # type: ignore[arg-type]
    first = compute_diff(repo, base)
    raw = subprocess.run(
        ["git", "-c", "core.quotePath=false", "diff", "--no-color", "-M", "-U3", base],
        cwd=repo, capture_output=True, check=True,
    ).stdout
    assert first.digest == hashlib.sha1(raw).hexdigest()
    assert compute_diff(repo, base).digest == first.digest
    only = compute_diff(repo, base, paths=["[ab].txt"])
    assert [f.path for f in only.files] == ["[ab].txt"]  # a pathspec, not a glob


def test_compute_diff_detects_renames(tmp_path: Path) -> None:
    repo, base = _wt(tmp_path)
    (repo / "b.txt").rename(repo / "c.txt")
    [f] = compute_diff(repo, base).files
    assert (f.status, f.old_path, f.path) == ("renamed", "b.txt", "c.txt")


def test_compute_diff_without_an_index_file(tmp_path: Path) -> None:
    repo, base = _wt(tmp_path)
    (repo / ".git" / "index").unlink()
    (repo / "a.txt").write_text("A\n")
    files = {f.path: f.status for f in compute_diff(repo, base).files}
    assert files == {"a.txt": "modified"}
    assert not (repo / ".git" / "index").exists()  # the real index is never written


# --------------------------------------------------------------------------- word diff


def test_word_diff_spans_and_the_size_limit() -> None:
    assert word_diff("x(y)z", "x[y]z") == ([(1, 2), (3, 4)], [(1, 2), (3, 4)])
    assert word_diff("a-b-c", "a..b") == ([(1, 2), (3, 5)], [(1, 3)])
    half = "w " * 1000  # 4000 characters in all: still worth a token match
    assert word_diff(half, "w " * 999 + "vv") == ([(1998, 2000)], [(1998, 2000)])
    big = "w " * 1001
    assert word_diff(big, big.replace("w", "v", 1)) == ([(0, 2002)], [(0, 2002)])
    assert word_diff("", "z" * 5000) == ([], [(0, 5000)])
    assert word_diff("z" * 5000, "") == ([(0, 5000)], [])
    # autojunk would treat a token repeated this often as junk and miss the one-token change.
    many = " ".join(["t"] * 300)
    a, b = word_diff(many + " end", many + " END")
    assert [(many + " end")[s:e] for s, e in a] == ["end"] and [(many + " END")[s:e] for s, e in b] == ["END"]


# --------------------------------------------------------------------------- second round


@pytest.mark.parametrize("opts", [("-M",), ("-U0",)], ids=" ".join)
def test_hunk_ids_do_not_depend_on_how_the_hunk_was_read(changed_repo: Path, opts: tuple[str, ...]) -> None:
    raw = _git_diff(changed_repo, *opts)
    direct = parse_unified(raw)
    built_first = parse_unified(raw)
    for f in built_first:
        for h in f.hunks:
            assert h.lines is not None  # lines before ids: the id comes from the DiffLine path
    slow = _slow(raw)
    ids = [[h.id for h in f.hunks] for f in direct]
    assert ids == [[h.id for h in f.hunks] for f in built_first] == [[h.id for h in f.hunks] for f in slow]
    assert max(len(f.hunks) for f in direct) >= 4  # the fast parser handled a many-hunk file
    for f in direct:
        for h in f.hunks:
            assert h.id == expected_id(f.path, h.lines, 0)  # no two hunks alike in this repo


def test_git_env_drops_redirecting_variables_and_pins_editors(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("GIT_DIR", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "GIT_EXTERNAL_DIFF"):
        monkeypatch.setenv(k, "x")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "kept")
    monkeypatch.setenv("GIT_EDITOR", "vim")
    env = git_env({"EXTRA": "1", "GIT_OPTIONAL_LOCKS": "1"})
    for k in ("GIT_DIR", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "GIT_EXTERNAL_DIFF"):
        assert k not in env
    assert env["GIT_AUTHOR_NAME"] == "kept" and env["EXTRA"] == "1"
    assert (env["GIT_TERMINAL_PROMPT"], env["GIT_EDITOR"], env["GIT_SEQUENCE_EDITOR"], env["GIT_MERGE_AUTOEDIT"]) == (
        "0", ":", ":", "no"
    )
    assert env["GIT_OPTIONAL_LOCKS"] == "1"  # extra wins
    assert git_env()["GIT_OPTIONAL_LOCKS"] == "0"


def test_run_git_stdin_missing_git_and_missing_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "r")
    empty_blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_out(repo, "hash-object", "--stdin") == empty_blob  # stdin is /dev/null, never the terminal
    assert run_git(repo, ["hash-object", "--stdin"], input=b"x\n").stdout.decode().strip() != empty_blob
    assert run_git(repo, ["rev-parse", "--verify", "nope"], check=False).returncode != 0
    with pytest.raises(NotFound, match=r"^directory .*missing does not exist$"):
        run_git(tmp_path / "missing", ["status"])
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    with pytest.raises(GitError) as info:
        run_git(repo, ["status"])
    assert info.value.message == "git is not installed or not on PATH" and info.value.hint == "install git"


def test_git_file_pointing_inside_is_refused_with_a_hint(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wb/x", str(wt), "HEAD")
    real_gitdir = (wt / ".git").read_text().split(":", 1)[1].strip()
    (wt / "inner").mkdir()
    (wt / ".git").write_text("gitdir:inner\n")  # no space after the colon
    with pytest.raises(GitError) as info:
        worktree_root(wt)
    top = wt.resolve()
    assert info.value.message == f"{top}/.git points at a git directory inside the worktree ({top}/inner)"
    assert info.value.hint == "the worktree's .git file was rewritten; recreate the session"
    (wt / ".git").write_bytes(b"gitdir: /nonexistent/\xff\n")
    with pytest.raises(GitError, match="is not a git checkout"):
        worktree_root(wt)
    (wt / ".git").write_text(f"gitdir: {real_gitdir}\n")
    assert worktree_root(wt / "inner") == wt.resolve()


def test_rename_and_copy_with_a_mode_change_and_binary_typechange() -> None:
    text = (
        "diff --git a/a b/b\nold mode 100644\nnew mode 100755\nsimilarity index 100%\nrename from a\nrename to b\n"
        "diff --git a/c b/d\nold mode 100755\nnew mode 100644\nsimilarity index 100%\ncopy from c\ncopy to d\n"
        "diff --git a/t b/t\ndeleted file mode 100644\nindex 1..0\nBinary files a/t and /dev/null differ\n"
        "diff --git a/t b/t\nnew file mode 120000\nindex 0..2\n--- /dev/null\n+++ b/t\n@@ -0,0 +1 @@\n+x\n"
        "\\ No newline at end of file\n"
    )
    ren, cp, tc = parse_unified(text)
    assert (ren.status, ren.mode_change, ren.index) == ("renamed", ("100644", "100755"), None)
    assert (cp.status, cp.mode_change) == ("copied", ("100755", "100644"))
    assert (tc.status, tc.binary, tc.old_mode, tc.new_mode, tc.mode_change) == (
        "typechange", True, "100644", "120000", ("100644", "120000")
    )
    assert (tc.added, tc.removed) == (1, 0)
