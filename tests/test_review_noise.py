"""Review noise (core/review_noise.py): build artefacts a session added and the repository
does not track are one "ignored: N files" line in the CLI and the UI, not hunks to review,
and never merged. Real git repos; one end-to-end test against a real daemon and the UI."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.conftest import git, make_repo
from tests.test_review import call, diff_json
from tests.test_ui_review import until
from tests.wb import Wb
from workbench import paths
from workbench.core import merge, review_noise
from workbench.core.tree_diff import compute_tree_diff, update_tree_diff
from workbench.core.worktree_diff import compute_diff
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.review_actions import review_progress
from workbench.ui.widgets.diff_view import DiffView

NOISE = {"pkg/__pycache__/x.pyc": b"\x00\x01pyc", "node_modules/a/b.js": b"module.exports = 1\n"}
LINE = "ignored: 2 files (node_modules/, pkg/__pycache__/)"


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def tree_names(repo: Path, rev: str = "HEAD") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", rev).split())


def test_match_reads_patterns_like_gitignore() -> None:
    pats = review_noise.DEFAULT_IGNORE
    assert review_noise.match("a/__pycache__/m.txt", pats) == review_noise.Match("a/__pycache__")
    assert review_noise.match("x.pyc", pats) == review_noise.Match("", by_name=True)
    assert review_noise.match("src/pkg.egg-info/PKG-INFO", pats) == review_noise.Match("src/pkg.egg-info")
    assert review_noise.match("node_modules", pats) is None  # a file of that name is not the directory
    assert review_noise.match("src/builder.py", pats) is None
    assert review_noise.match("docs/_build/index.html", ["docs/_build/"]) == review_noise.Match("", by_name=True)
    assert review_noise.match("a/docs/_build/index.html", ["docs/_build/"]) is None  # from the top only
    assert review_noise.match("pkg/__pycache__/m.pyc", pats) == review_noise.Match("pkg/__pycache__", by_name=True)
    assert review_noise.summary(0, []) == "" and review_noise.summary(1, ["x.pyc"]) == "ignored: 1 file (x.pyc)"


def test_tree_diff_sets_noise_apart_but_never_a_tracked_directory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "a = 1\n", "build/tool.sh": "echo 1\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    write(repo, {**NOISE, "app.py": b"a = 2\n", "build/tool.sh": b"echo 2\n", "build/new.sh": b"echo new\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "work")
    tip = git(repo, "rev-parse", "HEAD").strip()
    d = compute_tree_diff(repo, base, tip, ignore=review_noise.DEFAULT_IGNORE)
    # build/ is a directory the repository tracks: what is under it is reviewed
    assert [f.path for f in d.files] == ["app.py", "build/new.sh", "build/tool.sh"]
    assert d.ignored == sorted(NOISE) and d.ignored_count == 2 and d.stat()[0] == 3
    assert d.ignored_where == ["node_modules/", "pkg/__pycache__/"]
    assert all("node_modules" not in h.render() for f in d.files for h in f.hunks)
    # without patterns everything is listed
    assert len(compute_tree_diff(repo, base, tip).files) == 5
    # updated path by path: a new artefact joins the ignored, an edit stays in files
    write(repo, {"pkg/__pycache__/y.pyc": b"\x00y", "app.py": b"a = 3\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more")
    tip2 = git(repo, "rev-parse", "HEAD").strip()
    up = update_tree_diff(repo, d, tip, base, tip2, ignore=review_noise.DEFAULT_IGNORE)
    whole = compute_tree_diff(repo, base, tip2, ignore=review_noise.DEFAULT_IGNORE)
    assert up is not None
    assert [f.path for f in up.files] == [f.path for f in whole.files]
    assert (up.ignored, up.ignored_count, up.ignored_where) == (whole.ignored, 3, whole.ignored_where)


def test_an_in_place_worktree_diff_sets_noise_apart_too(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "a = 1\n", "build/tool.sh": "echo 1\n"})
    write(repo, {**NOISE, "app.py": b"a = 2\n", "build/new.sh": b"echo new\n"})
    d = compute_diff(repo, "HEAD", ignore=review_noise.DEFAULT_IGNORE)
    assert [f.path for f in d.files] == ["app.py", "build/new.sh"]
    assert (d.ignored, d.ignored_where) == (sorted(NOISE), ["node_modules/", "pkg/__pycache__/"])


def test_ff_merge_leaves_out_noise_the_session_committed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "a = 1\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-qc", "session")
    write(repo, {**NOISE, "app.py": b"a = 2\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "session work")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    res = merge.merge_snapshot(repo, base, head, head, "main", "ff", "land it", review_noise.DEFAULT_IGNORE)
    assert tree_names(repo) == {"app.py"} and (repo / "app.py").read_text() == "a = 2\n"
    # still a fast-forward of the session's history, with the artefacts taken out on top
    assert git(repo, "merge-base", "--is-ancestor", head, res.commit) == ""
    assert git(repo, "status", "--porcelain") == ""


def test_session_noise_in_cli_ui_and_merge(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "# demo\n", "src/app.py": "print('hi')\n",
                                         "build/tool.sh": "echo 1\n"})
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[session]\nsandbox = "off"\n')
    sid = wb.new(repo, "--sandbox", "off", "--agent", "sleep 1000", "--name", "noise")
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    write(wt, {**NOISE, "src/app.py": b"print('hello')\n", "build/tool.sh": b"echo 2\n"})

    d = diff_json(wb, sid)
    assert [f["path"] for f in d["files"]] == ["build/tool.sh", "src/app.py"]
    assert d["ignored"] == 2 and d["ignored_where"] == ["node_modules/", "pkg/__pycache__/"]
    # the hunks to review, as the merge's "N of M hunks not reviewed" counts them: the real ones only
    assert review_progress(d) == (0, 2)
    stat = wb.run("diff", sid, "--stat").stdout
    assert LINE in stat and "2 files changed" in stat and "node_modules/a" not in stat
    unified = wb.run("diff", sid)
    assert "+print('hello')" in unified.stdout and "node_modules" not in unified.stdout
    assert unified.stderr.strip() == LINE
    assert wb.json("diff", sid, "--stat", "--json")["ignored"] == 2
    assert call("get", id=sid)["files_changed"] == 2

    async def ui() -> None:
        app = WorkbenchApp(strict=True)
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: sid in app.main.panes, "the session's pane")
            await pilot.press("3")
            panel = app.main.panes[sid].diff
            await until(pilot, lambda: panel.doc is not None and len(panel.doc.files) == 2, "2 files")
            assert panel.doc is not None and panel.doc.hunk_count() == (0, 2)
            files = panel.files
            assert files.option_count == 3
            last = files.get_option_at_index(2)
            assert last.disabled and LINE in str(last.prompt)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.focused, DiffView), "focus in the diff")
            assert "node_modules" not in "".join(panel.view.render_line(y).text for y in range(panel.view.size.height))

    asyncio.run(ui())

    # the merge lands the real change, not the artefacts (left in the session's worktree)
    wb.run("merge", sid, "-m", "say hello")
    assert tree_names(repo) == {"README.md", "src/app.py", "build/tool.sh"}
    assert (repo / "src/app.py").read_text() == "print('hello')\n" and not (repo / "node_modules").exists()
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == ""
    after = diff_json(wb, sid)
    assert after["files"] == [] and after["ignored"] == 2
    assert (wt / "node_modules/a/b.js").exists()

    # the list is configurable: a repo's .workbench.toml may set it (here: show everything)
    (repo / ".workbench.toml").write_text("[review]\nignore = []\n")
    shown = diff_json(wb, sid)
    assert sorted(f["path"] for f in shown["files"]) == sorted(NOISE) and shown["ignored"] == 0
