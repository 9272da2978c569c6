"""Text the built-in agent sends that is not the user's: the system prompt and the
compaction request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# AGENTS.md beyond this is cut: it is re-sent with every request.
MAX_AGENTS_MD_BYTES = 32 * 1024

_APPROVAL_TEXT = {
    "suggest": (
        "suggest: the user approves every command and every edit before it runs. Calls may "
        "wait for a while; a denied call comes back as an error saying why."
    ),
    "auto-edit": (
        "auto-edit: edits with apply_patch run at once; commands that can change anything "
        "wait for the user's approval (plain reads like ls, cat, rg, git status do not). A "
        "denied call comes back as an error saying why."
    ),
    "full-auto": (
        "full-auto: nothing waits for approval. The sandbox still applies, so a command "
        "that is refused by it failed for that reason, not by chance."
    ),
}

_SANDBOX_TEXT = {
    "workspace": (
        "workspace sandbox: the workspace and a private HOME and /tmp are writable; the rest "
        "of the system is read-only; git can commit on the session's branch"
    ),
    "strict": (
        "strict sandbox: the workspace and a private HOME and /tmp are writable; the rest of "
        "the system, including .git, is read-only (do not commit; the user does)"
    ),
    "off": "no sandbox: commands run as the user, unconfined; be careful",
}

COMPACT_PROMPT = """\
Your context window is nearly full, so this conversation will be replaced by a hand-off \
note that you write now. A fresh copy of you will continue the task from the note alone \
(plus the original task and the user's latest messages, which are kept verbatim).

Write the note as plain text, without calling any tool:
- Goal: what the user wants, including constraints they stated.
- Done so far: files read or changed (paths), commands run and what they showed, \
decisions made and why.
- Current state: what works, what fails (exact error messages and test names).
- Next steps: the concrete remaining work, in order.
- Facts to keep: names, paths, versions and other details needed to continue.
Be concise but do not drop anything needed to finish the task."""


@dataclass(frozen=True)
class PromptContext:
    worktree: Path
    branch: str = ""
    sandbox: str = "workspace"
    network: bool = False
    approval: str = "suggest"
    model: str = ""


def read_agents_md(root: Path) -> str | None:
    """The repo's AGENTS.md (at the workspace root), cut to a sane size; None if absent."""
    path = root / "AGENTS.md"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    text = data[:MAX_AGENTS_MD_BYTES].decode("utf-8", "replace")
    if len(data) > MAX_AGENTS_MD_BYTES:
        text += f"\n[... AGENTS.md cut at {MAX_AGENTS_MD_BYTES} of {len(data)} bytes ...]"
    return text.strip() or None


def system_prompt(ctx: PromptContext) -> str:
    branch = f" on branch {ctx.branch}" if ctx.branch else ""
    network = "allowed" if ctx.network else "blocked (no internet; local tools only)"
    parts = [
        "You are the built-in coding agent of workbench, working on one task in a git "
        "repository. Work autonomously until the task is done, then stop and reply with a "
        "short summary of what you changed and how you checked it.",
        "",
        "# Environment",
        f"- Workspace: {ctx.worktree} (a git worktree{branch}). Commands run there and patch "
        "paths are relative to it. The user reviews the worktree's diff when you finish and "
        "merges it; do not push, and do not commit unless asked.",
        f"- Sandbox: {_SANDBOX_TEXT.get(ctx.sandbox, ctx.sandbox)}.",
        f"- Network: {network}.",
        f"- Approval mode: {_APPROVAL_TEXT.get(ctx.approval, ctx.approval)}",
        "",
        "# Tools",
        "- shell: run a command given as an argv array; use [\"bash\", \"-lc\", \"...\"] "
        "for pipes or redirection. Prefer rg and sed -n 'A,Bp' for reading. Long output is "
        "shortened in the middle.",
        "- apply_patch: the only way to edit files (the *** Begin Patch format). Read the "
        "lines you change first; context lines must match exactly.",
        "- update_plan: keep a short plan for multi-step work and update it as you go.",
        "",
        "# How to work",
        "- Read before you edit; keep changes small and in the style of the code around them.",
        "- Run the project's tests or checks after changing code, and fix what you broke.",
        "- If a tool call fails, read the error and change your approach; do not repeat the "
        "same failing call.",
        "- If the user denies a call, respect the reason they give.",
    ]
    agents_md = read_agents_md(ctx.worktree)
    if agents_md:
        parts += [
            "",
            "# AGENTS.md",
            "The repository's AGENTS.md follows. Its instructions apply to all your work "
            "here (the user's own messages take precedence over it).",
            "",
            agents_md,
        ]
    return "\n".join(parts)
