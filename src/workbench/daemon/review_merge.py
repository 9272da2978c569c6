"""Finishing a reviewed session: the checks before a merge, the default merge message, the
session branch moved onto what was merged, and the pull request (`merge --pr`).

What lands is always the snapshot the daemon imported and verified (session_repo), never
the session's own git; ReviewService.merge runs these steps under the session's lock.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.core import merge, session_repo
from workbench.core.escapes import strip_escapes
from workbench.core.git_runner import run_git, stderr_text
from workbench.core.models import Session
from workbench.core.store import Store
from workbench.core.tree_diff import digest_of
from workbench.daemon.session_git import SessionGit
from workbench.errors import GitError, UsageError, WorkbenchError
from workbench.profiles import acp as acp_profiles

EVENT_PAGE = 5000
MAX_MESSAGE = 5000
SUBJECT_MAX = 72
GH_TIMEOUT_S = 120


def _last_answer(store: Store, s: Session) -> str:
    """The agent's last complete answer (built-in and ACP agents record them), placeholders
    such as "(script finished)" left out: they say nothing about the change."""
    if s.agent != "builtin" and not acp_profiles.is_acp(s.agent):
        return ""
    last = ""
    after = 0
    while True:
        page = store.events(s.id, after=after, limit=EVENT_PAGE)
        for e in page:
            text = str(e["data"].get("text") or "").strip()
            placeholder = text.startswith("(") and text.endswith(")") and "\n" not in text
            if e["kind"] == "assistant" and text and not placeholder and not e["data"].get("interrupted"):
                last = text
        if len(page) < EVENT_PAGE:
            break
        after = page[-1]["seq"]
    return last[:MAX_MESSAGE]


def agent_summary(store: Store, s: Session) -> str:
    """Default merge message: the task (the prompt's first line) as the subject and the
    agent's summary (its last answer) as the body; without a prompt the answer alone when
    its first line fits a subject, else "workbench: NAME"."""
    task = next((ln.strip() for ln in strip_escapes(s.prompt or "").splitlines() if ln.strip()), "")
    if len(task) > SUBJECT_MAX:
        task = task[: SUBJECT_MAX - 1].rstrip() + "…"
    last = _last_answer(store, s)
    if task:
        return f"{task}\n\n{last}" if last and last != task else task
    if last:
        first = last.splitlines()[0]
        return last if len(first) <= SUBJECT_MAX else f"workbench: {s.name}\n\n{last}"
    return f"workbench: {s.name}"


def check_mergeable(s: Session, snap: session_repo.Snapshot, reviewed: str | None) -> None:
    """Refuse a merge that would land something other than what the user saw."""
    if snap.skipped_count:
        names = ", ".join(strip_escapes(p) for p, _ in snap.skipped[:5])
        raise UsageError(
            f"{snap.skipped_count} file(s) could not be imported for review, too large or unreadable"
            f" ({names}); nothing changed",
            hint="remove them from the session's worktree (or add them to .gitignore), then merge again",
        )
    if reviewed and reviewed != digest_of(s.base_commit, snap.tip):
        raise UsageError(
            f"session {s.name} changed since the diff you reviewed; nothing changed",
            hint="look at the diff again, then merge",
        )


async def after_merge(git: SessionGit, s: Session, snap: session_repo.Snapshot, new: str,
                      merged_snapshot: str | None = None) -> str | None:
    """Move the session's branch onto the merged commit so its diff starts empty (inside
    the sandbox; files the session changed since the snapshot are never overwritten, and
    review noise left out of the merge stays: followed from `merged_snapshot`, the
    snapshot without it). Returns a warning when the branch stays where it was."""
    if snap.head == new:
        return None
    try:
        reply = await git.edit(s, {"op": "reset", "commit": new, "keep": True, "from": merged_snapshot or snap.tip})
    except WorkbenchError as e:
        return f"the session branch stays where it was ({e})"
    warning = reply.get("warning")
    return f"the session branch stays where it was ({strip_escapes(str(warning))[:300]})" if warning else None


def open_pr(s: Session, snap: session_repo.Snapshot, base_branch: str, message: str,
            ignore: Sequence[str] = ()) -> dict[str, Any]:
    """Push the snapshot as the session's branch and open a pull request with gh (blocking)."""
    gh = shutil.which("gh")
    if gh is None:
        raise UsageError("gh (the GitHub CLI) is not installed", hint="install gh, or merge without --pr")
    repo = Path(s.repo)
    remotes = run_git(repo, ["remote"]).stdout.decode().split()
    if not remotes:
        raise UsageError(f"{repo} has no remote; a pull request needs one", hint="merge without --pr")
    remote = "origin" if "origin" in remotes else remotes[0]
    # What is pushed is the imported snapshot (verified objects), as the session's branch.
    tree, _noise = merge.clean_tree(repo, s.base_commit, snap.tip, ignore)
    commit = merge.landing_commit(repo, snap.tip, snap.head, message, tree)
    proc = run_git(repo, ["push", "--quiet", remote, f"{commit}:refs/heads/{s.branch}"], check=False)
    if proc.returncode != 0:
        raise GitError(f"git push to {remote} failed: {stderr_text(proc)}")
    title, _, body = message.partition("\n")
    res = subprocess.run(
        [gh, "pr", "create", "--head", s.branch, "--base", base_branch, "--title", title.strip(),
         "--body", body.strip() or title.strip()],
        cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=GH_TIMEOUT_S, check=False,
    )
    if res.returncode != 0:
        raise WorkbenchError(f"gh pr create failed: {(res.stderr or res.stdout).strip()[:500]}")
    return {"pr": res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "", "commit": commit,
            "remote": remote}
