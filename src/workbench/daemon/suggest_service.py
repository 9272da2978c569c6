"""Suggestions: per repository, a scan for work and the deduplicated list it keeps.

A scan reads the repository on the host only through read-only git (core/suggest_scan.py)
and runs every command (the repo's check, its linters, a log command) in a sandbox, in a
scratch checkout of HEAD under the daemon's data dir, never in the main checkout: the
repository is hostile (docs/security.md) and must not change. Work happens in threads and
asyncio subprocesses, never on the event loop. Results are kept per repository and HEAD;
the check runs at the first listing of a repository, on request (`refresh`), on the
`[suggest] interval_s` schedule and after a merge, and its last result is kept with the
other sources'. Dismissals live in the daemon's state dir. docs/suggestions.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config as config_mod
from workbench import paths
from workbench.core import check as check_mod
from workbench.core import session_repo, suggest_gh
from workbench.core import suggest_parse as sp
from workbench.core import suggest_scan as scan
from workbench.core import worktree as wt_mod
from workbench.core.escapes import one_line
from workbench.core.models import Session
from workbench.daemon.bus import LogRecorded
from workbench.daemon.extensions import Extension
from workbench.errors import NotFound, WorkbenchError
from workbench.protocol import suggest as ps

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

SCHEDULE_TICK_S = 30.0  # the scheduler's longest sleep (a repo with no schedule, or none known)
SCHEDULE_MIN_S = 1.0  # its shortest: a check due sooner waits this long
LINT_KEEP = 8 * 1024 * 1024  # linter output kept (JSON must stay whole)
CHECK_KEEP = 1024 * 1024


@dataclass
class RepoState:
    head: str = ""
    key: str = ""  # HEAD and the settings the last scan saw
    found: list[sp.Found] = field(default_factory=list)  # every source but the check
    check: list[sp.Found] = field(default_factory=list)  # the check's last run
    check_at: float = 0.0
    scanned_at: float | None = None
    errors: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    task_checks: bool = False


def dismissed_file() -> Path:
    return paths.state_dir() / "suggestions-dismissed.json"


def cache_file() -> Path:
    """The last scan of each repository: kept across restarts, so that a suggestion's id
    still starts it and the check's last result is not lost."""
    return paths.state_dir() / "suggestions-cache.json"


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _found(rows: Any) -> list[sp.Found]:
    fields = set(sp.Found.__dataclass_fields__)
    return [sp.Found(**{k: v for k, v in r.items() if k in fields}) for r in rows or [] if isinstance(r, dict)]


def _load_cache() -> dict[str, RepoState]:
    out: dict[str, RepoState] = {}
    for repo, d in _load_json(cache_file()).items():
        try:
            out[repo] = RepoState(head=str(d["head"]), key=str(d["key"]), found=_found(d.get("found")),
                                  check=_found(d.get("check")), check_at=float(d.get("check_at") or 0),
                                  scanned_at=d.get("scanned_at"), errors=[str(e) for e in d.get("errors") or []])
        except (KeyError, TypeError, ValueError):
            continue  # a damaged entry is scanned again
    return out


def _cache_json(repos: dict[str, RepoState]) -> dict[str, Any]:
    return {repo: {"head": st.head, "key": st.key, "found": [asdict(f) for f in st.found],
                   "check": [asdict(f) for f in st.check], "check_at": st.check_at, "scanned_at": st.scanned_at,
                   "errors": st.errors}
            for repo, st in repos.items() if st.scanned_at}


def _settings_key(head: str, cfg: config_mod.Config) -> str:
    return head + "\0" + cfg.suggest.model_dump_json() + "\0" + json.dumps(cfg.check.command)


def load_settings(root: Path) -> config_mod.Config:
    """The repo's config, whose `[suggest]` may only turn off what the user's has on: a
    source runs when both say so, the schedule is the longer of the two (0: off)."""
    cfg = config_mod.load(root)
    user = config_mod.load(None).suggest
    sg = cfg.suggest
    every = max(sg.interval_s, user.interval_s) if sg.interval_s and user.interval_s else 0
    cfg.suggest = sg.model_copy(update={
        "check": sg.check and user.check, "lint": sg.lint and user.lint, "todo": sg.todo and user.todo,
        "gh": sg.gh and user.gh, "interval_s": every})
    return cfg


class SuggestService(Extension):
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.repos: dict[str, RepoState] = _load_cache()
        self.dismissed = _load_json(dismissed_file())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()  # a repository or its settings changed: plan the schedule again
        daemon.manager.bus.subscribe(LogRecorded, self._on_log)

    # ----------------------------------------------------------------- hooks

    async def after_recover(self, prior: Any) -> None:
        self._spawn(self._schedule())

    def on_shutdown(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def _on_log(self, ev: LogRecorded) -> None:
        """After a merge the repository changed: scan it again, check included, so that
        what the merged work fixed disappears."""
        if ev.kind != "merge" or ev.data.get("pr"):
            return
        with contextlib.suppress(RuntimeError):  # no loop: not the daemon's thread
            asyncio.get_running_loop()
            self.ensure_scan(ev.session.repo, checks=True)

    async def _schedule(self) -> None:
        """The check on each known repository's `interval_s` (0: never). The loop sleeps until
        the next check is due (between SCHEDULE_MIN_S and SCHEDULE_TICK_S), or until a scan
        sees a new repository or new settings."""
        while True:
            self._wake.clear()  # before the pass: a change seen during it plans again at once
            try:
                wait = await self._schedule_pass()
            except Exception:  # the schedule must outlive one bad pass
                log.exception("suggest: the schedule's pass failed")
                wait = SCHEDULE_TICK_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _schedule_pass(self) -> float:
        """Start the checks that are due; returns how long until the next one is."""
        wait = SCHEDULE_TICK_S
        repos = set(self.repos) | {s.repo for s in self.d.manager.sessions.values()}
        for repo in sorted(repos):
            try:
                cfg = await asyncio.to_thread(load_settings, Path(repo))
            except (WorkbenchError, OSError):
                continue
            every = cfg.suggest.interval_s
            if not (every and cfg.suggest.check and cfg.check.command):
                continue
            st = self.repos.get(repo) or RepoState()
            due = st.check_at + every - time.time()
            if due <= 0:
                self.ensure_scan(repo, checks=True)
                due = every  # from now: check_at moves when this check ends
            wait = min(wait, due)
        return max(SCHEDULE_MIN_S, wait)

    # ----------------------------------------------------------------- the list

    async def root(self, repo: str) -> str:
        info = await asyncio.to_thread(wt_mod.inspect_repo, Path(repo))
        return str(info.root)

    def ensure_scan(self, repo: str, *, checks: bool) -> asyncio.Task[None]:
        """The scan of `repo` in progress, or a new one; one with the check if asked."""
        st = self.repos.setdefault(repo, RepoState())
        if st.task is not None and not st.task.done():
            if checks and not st.task_checks:
                prev = st.task

                async def then() -> None:
                    with contextlib.suppress(Exception):
                        await prev
                    await self._scan(repo, True)

                st.task, st.task_checks = self._spawn(then()), True
            return st.task
        st.task, st.task_checks = self._spawn(self._scan(repo, checks)), checks
        return st.task

    async def listing(self, repo: str, *, refresh: bool, wait: bool) -> ps.SuggestReply:
        root = await self.root(repo)
        st = self.repos.setdefault(root, RepoState())
        if refresh:
            task: asyncio.Task[None] | None = self.ensure_scan(root, checks=True)
        else:
            first_check = False
            try:
                cfg = await asyncio.to_thread(load_settings, Path(root))
                key = _settings_key(await asyncio.to_thread(scan.head, Path(root)), cfg)
                # The check never ran on this repository: the first listing runs it, so a
                # failing test is listed without asking for --refresh.
                first_check = not st.check_at and cfg.suggest.check and bool(cfg.check.command)
            except WorkbenchError:
                key = ""
            if first_check:
                task = self.ensure_scan(root, checks=True)
            else:
                task = None if key and key == st.key and st.scanned_at else self.ensure_scan(root, checks=False)
        if task is not None and wait:
            await asyncio.shield(task)
            # A scan that chains on the one awaited (one with the check, asked for meanwhile)
            # is part of the answer too: "scanning" is false in a waited-for reply.
            while wait and st.task is not None and not st.task.done():
                await asyncio.shield(st.task)
        return self.reply(root)

    def reply(self, root: str) -> ps.SuggestReply:
        st = self.repos[root]
        items, dismissed = [], 0
        for sug in self._entries(root):
            if sug["id"] in self.dismissed:
                dismissed += 1
            else:
                items.append(sug)
        return {"repo": root, "head": st.head, "scanned_at": st.scanned_at,
                "scanning": st.task is not None and not st.task.done(), "suggestions": items,
                "dismissed": dismissed, "errors": list(st.errors)}

    def _entries(self, root: str) -> list[ps.Suggestion]:
        st = self.repos[root]
        started: dict[str, list[str]] = {}
        for s in self.d.manager.sessions.values():
            if s.extra.get("suggestion"):
                started.setdefault(str(s.extra["suggestion"]), []).append(s.id)
        out: dict[str, ps.Suggestion] = {}
        for f in [*st.check, *st.found]:
            sid = sp.suggestion_id(root, f.source, f.key)
            if sid not in out:
                out[sid] = {"id": sid, "repo": root, "source": f.source, "title": f.title,  # type: ignore[typeddict-item]
                            "evidence": f.evidence, "prompt": f.prompt, "rank": f.rank,
                            "locations": f.locations, "sessions": started.get(sid, [])}
        return sorted(out.values(), key=lambda x: -x["rank"])

    def find(self, sid: str) -> ps.Suggestion:
        for root in self.repos:
            for sug in self._entries(root):
                if sug["id"] == sid:
                    return sug
        raise NotFound(f"no suggestion {sid!r}", hint="`workbench suggest` lists them")

    async def dismiss(self, sid: str) -> None:
        sug = self.find(sid)
        self.dismissed[sid] = {"repo": sug["repo"], "title": sug["title"], "at": time.time()}
        await asyncio.to_thread(_save_json, dismissed_file(), dict(self.dismissed))

    # ----------------------------------------------------------------- a scan

    async def _scan(self, repo: str, checks: bool) -> None:
        st = self.repos.setdefault(repo, RepoState())
        root = Path(repo)
        errors: list[str] = []
        try:
            cfg = await asyncio.to_thread(load_settings, root)
            head = await asyncio.to_thread(scan.head, root)
        except WorkbenchError as e:
            st.errors, st.scanned_at = [one_line(str(e), 300)], time.time()
            return
        sg = cfg.suggest
        key = _settings_key(head, cfg)
        if key != st.key:
            self._wake.set()  # maybe a new schedule
        found: list[sp.Found] = []

        async def source(name: str, coro: Coroutine[Any, Any, list[sp.Found]]) -> None:
            try:
                found.extend(await coro)
            except (WorkbenchError, OSError, ValueError) as e:
                errors.append(one_line(f"{name}: {e}", 300))
            except Exception as e:  # a source's bug must not lose the others' results
                log.exception("suggest: %s failed for %s", name, repo)
                errors.append(one_line(f"{name}: internal error: {e}", 300))

        host = []
        if sg.todo:
            host.append(source("todo", asyncio.to_thread(_todos, root, sg.max_items)))
        if sg.gh:
            host.append(source("gh", suggest_gh.gh_suggestions(root)))
        if sg.log_file:
            host.append(source("log", asyncio.to_thread(_log_file, root, cfg)))
        # A scratch checkout costs a checkout of HEAD: only when a command will run in it
        # (the main checkout tells whether any linter is configured).
        lint = sg.lint and bool(await asyncio.to_thread(scan.linters, root, root))
        sandboxed = lint or sg.log_command or (checks and sg.check and cfg.check.command)
        check_found: list[sp.Found] | None = None
        if sandboxed and head:
            scratch = paths.data_dir() / "suggest" / hashlib.sha256(repo.encode()).hexdigest()[:16]
            try:
                await asyncio.to_thread(_fresh_checkout, root, scratch, head)
                if lint:
                    await source("lint", self._lint(root, scratch, cfg, head))
                if sg.log_command:
                    await source("log", self._log_command(root, scratch, cfg, head))
                if checks and sg.check and cfg.check.command:
                    await source("check", self._check(root, scratch, cfg, head))
                    check_found = [f for f in found if f.source == "check"]
                    found = [f for f in found if f.source != "check"]
            except WorkbenchError as e:
                errors.append(one_line(f"scratch checkout: {e}", 300))
            finally:
                await asyncio.to_thread(scan.remove_tree, scratch)
        await asyncio.gather(*host)
        if check_found is not None:
            st.check, st.check_at = check_found, time.time()
        elif not (sg.check and cfg.check.command):
            st.check = []
        st.found = sorted(found, key=lambda f: -f.rank)[: sg.max_items]
        st.head, st.key, st.errors, st.scanned_at = head, key, errors, time.time()
        try:
            await asyncio.to_thread(_save_json, cache_file(), _cache_json(self.repos))
        except OSError as e:
            log.warning("suggest: cannot save the cache: %s", e)

    def _sandboxed(self, root: Path, scratch: Path, cfg: config_mod.Config, head: str, argv: list[str],
                   key: str) -> Any:
        """`argv` in a sandbox whose writable worktree is the scratch checkout (the main
        checkout read-only); strict mode, or none where the user turned sandboxes off."""
        mode = "off" if cfg.session.sandbox == "off" else "strict"
        cfg.require_sandboxed(key, mode)
        sid = "suggest-" + hashlib.sha256(str(root).encode()).hexdigest()[:10]
        s = Session(id=sid, name=sid, repo=str(root), branch="workbench-suggest", worktree=str(scratch),
                    base_commit=head, base_ref="HEAD", agent="suggest", command=[], sandbox=mode)
        return self.d.manager.sandboxed(s, argv, new_session=True)

    async def _run(self, root: Path, scratch: Path, cfg: config_mod.Config, head: str, argv: list[str], key: str,
                   *, timeout_s: float, keep: int) -> check_mod.CheckResult:
        cmd = await asyncio.to_thread(self._sandboxed, root, scratch, cfg, head, argv, key)
        return await check_mod.run_check(cmd, scratch, timeout_s=timeout_s, command=check_mod.command_text(argv),
                                         keep_bytes=keep, tail_lines=1 << 30, tail_chars=keep)

    async def _check(self, root: Path, scratch: Path, cfg: config_mod.Config, head: str) -> list[sp.Found]:
        argv = check_mod.check_argv(cfg.check.command)
        text = check_mod.command_text(cfg.check.command or "")
        res = await self._run(root, scratch, cfg, head, argv, "check.command", timeout_s=cfg.check.timeout_s,
                              keep=CHECK_KEEP)
        if res.status == "passed":
            return []
        return await asyncio.to_thread(sp.check_failures, res.tail, text, res.exit_code, res.reason)

    async def _lint(self, root: Path, scratch: Path, cfg: config_mod.Config, head: str) -> list[sp.Found]:
        out: list[sp.Found] = []
        for lt in await asyncio.to_thread(scan.linters, scratch, root):
            argv, rel_root = lt.argv, str(scratch.resolve())
            if lt.name == "eslint":  # its plugins are in the main checkout's node_modules
                argv, rel_root = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(root), *argv], str(root)
            res = await self._run(root, scratch, cfg, head, argv, "lint", timeout_s=cfg.suggest.timeout_s,
                                  keep=LINT_KEEP)
            if res.reason:
                raise WorkbenchError(f"{lt.name}: {res.reason}")
            parse = {"ruff": sp.ruff, "mypy": sp.mypy, "eslint": sp.eslint}[lt.name]
            out.extend(await asyncio.to_thread(parse, res.tail, rel_root))
        return out

    async def _log_command(self, root: Path, scratch: Path, cfg: config_mod.Config, head: str) -> list[sp.Found]:
        command = cfg.suggest.log_command or ""
        res = await self._run(root, scratch, cfg, head, check_mod.check_argv(command), "suggest.log_command",
                              timeout_s=cfg.suggest.timeout_s, keep=scan.LOG_BYTES)
        short = one_line(check_mod.command_text(command), 40)  # short in a title: the error stays on it
        return await asyncio.to_thread(sp.log_problems, res.tail, f"the output of `{short}`")


def _todos(root: Path, max_items: int) -> list[sp.Found]:
    hits, total = scan.todo_hits(root)
    return sp.todos(hits, total, max_items)


def _log_file(root: Path, cfg: config_mod.Config) -> list[sp.Found]:
    from_repo = cfg.suggest.log_file != config_mod.load(None).suggest.log_file
    path = scan.log_path(root, cfg.suggest.log_file, from_repo)
    return sp.log_problems(scan.read_log(path), str(path))


def _fresh_checkout(root: Path, scratch: Path, head: str) -> None:
    scan.remove_tree(scratch)
    session_repo.checkout(root, scratch, "workbench-suggest", head)
