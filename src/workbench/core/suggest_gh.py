"""Suggestions from GitHub through `gh`: failing CI runs and open issues.

Only when gh is installed and logged in, and only for a repository whose `origin` is on
github.com (read with safe git): gh gets it as GH_REPO and so never runs git in the
repository. gh's own requests to GitHub are the only network access a scan makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from workbench.core import suggest_parse as sp
from workbench.core import suggest_scan as scan

GH_TIMEOUT_S = 60.0
GH_FAILED_LOGS = 3  # failing runs whose log is fetched
FAILED = ("failure", "timed_out", "startup_failure")


async def gh_suggestions(root: Path) -> list[sp.Found]:
    gh = shutil.which("gh")
    owner_name = await asyncio.to_thread(scan.github_repo, root) if gh else None
    if not gh or not owner_name:
        return []
    env = {**os.environ, "GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1",
           "GH_PAGER": "cat", "GH_REPO": owner_name}
    code, _ = await _exec([gh, "auth", "status"], root, env)
    if code != 0:
        return []
    code, runs = await _exec([gh, "run", "list", "--limit", "20", "--json",
                              "databaseId,displayTitle,workflowName,headBranch,conclusion,status,url"], root, env)
    found: list[sp.Found] = []
    if code == 0:
        logs: dict[str, str] = {}
        ids = [str(r.get("databaseId")) for r in _json_list(runs) if r.get("conclusion") in FAILED]
        for rid in ids[:GH_FAILED_LOGS]:
            c, text = await _exec([gh, "run", "view", rid, "--log-failed"], root, env)
            if c == 0:
                logs[rid] = text
        found.extend(sp.ci_runs(runs, logs))
    code, issues = await _exec([gh, "issue", "list", "--state", "open", "--limit", "20", "--json",
                                "number,title,body,url"], root, env)
    if code == 0:
        found.extend(sp.issues(issues, 20))
    return found


def _json_list(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


async def _exec(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """(exit code, stdout) of one gh call; -1 when it timed out (and was killed)."""
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GH_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return -1, ""
    return proc.returncode or 0, out.decode("utf-8", "replace")
