"""A fake of the daemon's review methods for Pilot tests: files as old/new text, hunks with
stable ids, reject/revert that really change the "worktree", undo, review messages."""

from __future__ import annotations

import copy
import difflib
import hashlib
import time
from typing import Any

from workbench.errors import GitError, NotFound, UsageError
from workbench.protocol import review as pr

# A hunk's changed ranges as difflib opcodes (old a1:a2 -> new b1:b2): what reject reverses.
Ops = list[tuple[int, int, int, int]]


def ten_files() -> dict[str, tuple[list[str], list[str]]]:
    """A 10-file change: edits, two hunks in one file, an added and a deleted file, a binary."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    base = [f"def f{i}(x):\n" if i % 5 == 0 else f"    value_{i} = compute({i})\n" for i in range(40)]
    for n in range(7):
        new = list(base)
        new[3 + n] = f"    value_{3 + n} = compute_fast({3 + n})  # changed\n"
        if n == 0:
            new[30] = "    value_30 = 'second hunk'\n"
        out[f"src/mod{n}.py"] = (base, new)
    out["docs/new.md"] = ([], ["# New page\n", "written by the agent\n"])
    out["old_script.sh"] = (["#!/bin/sh\n", "echo old\n"], [])
    out["logo.png"] = (["<binary-a>"], ["<binary-b>"])
    return out


def _hunk_id(path: str, lines: list[list[Any]]) -> str:
    changed = "".join(f"{k}{t}" for k, t, *_ in lines if k != " ")
    return hashlib.sha1(f"{path}\0{changed}".encode()).hexdigest()[:12]


def hunks_of(path: str, old: list[str], new: list[str]) -> list[pr.HunkInfo]:
    return [h for h, _ops in _hunks_with_ops(path, old, new)]


def _hunks_with_ops(path: str, old: list[str], new: list[str]) -> list[tuple[pr.HunkInfo, Ops]]:
    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    out: list[tuple[pr.HunkInfo, Ops]] = []
    for group in sm.get_grouped_opcodes(3):
        i1, j1 = group[0][1], group[0][3]
        i2, j2 = group[-1][2], group[-1][4]
        lines: list[list[Any]] = []
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                lines += [[" ", old[a].rstrip("\n"), a + 1, b1 + a - a1 + 1] for a in range(a1, a2)]
                continue
            lines += [["-", old[a].rstrip("\n"), a + 1, None] for a in range(a1, a2)]
            lines += [["+", new[b].rstrip("\n"), None, b + 1] for b in range(b1, b2)]
        hunk = pr.HunkInfo(id=_hunk_id(path, lines), header=f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@",
                           old_start=i1 + 1 if i2 > i1 else i1, old_lines=i2 - i1,
                           new_start=j1 + 1 if j2 > j1 else j1, new_lines=j2 - j1, lines=lines)
        out.append((hunk, [(a1, a2, b1, b2) for tag, a1, a2, b1, b2 in group if tag != "equal"]))
    return out


class FakeReview:
    """Answers the review methods as the daemon would, each reply built with its protocol type."""

    def __init__(self, files: dict[str, tuple[list[str], list[str]]] | None = None) -> None:
        self.files = files if files is not None else ten_files()
        self.reviewed: set[str] = set()
        self.comments: list[pr.Comment] = []
        self.rejections: list[pr.Rejection] = []
        self.undo_stack: list[tuple[str, Any]] = []
        self.sent: list[str] = []
        self.check: pr.CheckResult | None = pr.CheckResult(
            status="failed", exit_code=1, duration_s=1.5, command="pytest -q", reason="",
            tail="FAILED tests/test_a.py::test_x\n1 failed, 9 passed", finished_at=time.time() - 120)

    def _file(self, path: str, old: list[str], new: list[str]) -> pr.FileInfo:
        binary = path.endswith(".png")
        status = "added" if not old else "deleted" if not new else "modified"
        hunks = [] if binary else hunks_of(path, old, new)
        key = "file:" + hashlib.sha1(path.encode()).hexdigest()[:12]
        for h in hunks:
            h["reviewed"] = h["id"] in self.reviewed
        ids = [h["id"] for h in hunks]
        done = sum(i in self.reviewed for i in ids)
        review_status = ("reviewed" if (key in self.reviewed if not ids else done == len(ids))
                         else "partial" if done else "unreviewed")
        return pr.FileInfo(
            path=path, old_path=None, status=status, binary=binary,
            added=sum(1 for h in hunks for ln in h["lines"] or [] if ln[0] == "+"),
            removed=sum(1 for h in hunks for ln in h["lines"] or [] if ln[0] == "-"),
            mode_change=None, old_mode=None, new_mode=None, hunks=hunks, similarity=None, key=key,
            review_status=review_status, hunk_count=len(hunks), omitted=False)

    def result(self, sid: str, paths: list[str] | None = None) -> pr.DiffReply:
        files = [self._file(p, o, n) for p, (o, n) in sorted(self.files.items()) if o != n
                 and (not paths or p in paths)]
        stat = pr.DiffStat(files=len(files), added=sum(f["added"] for f in files),
                           removed=sum(f["removed"] for f in files))
        return pr.DiffReply(session=sid, base="main", digest=str(len(self.undo_stack)), stat=stat, notes=[],
                            review=self.review_json(), check=self.check, offset=0, next=None, files=files)

    def review_json(self) -> pr.ReviewState:
        return pr.ReviewState(comments=[dict(c) for c in copy.deepcopy(self.comments)],
                              rejections=[dict(r) for r in copy.deepcopy(self.rejections)],
                              reviewed=sorted(self.reviewed), undo=[k for k, _ in self.undo_stack])

    def summary(self) -> pr.ReviewSummary:
        return pr.ReviewSummary(reviewed=len(self.reviewed),
                                pending_rejections=sum(1 for r in self.rejections if not r["sent"]),
                                pending_comments=sum(1 for c in self.comments if not c["sent"]),
                                undo=self.undo_stack[-1][0] if self.undo_stack else None)

    def _find(self, hunk: str) -> tuple[str, pr.HunkInfo, Ops]:
        for path, (old, new) in self.files.items():
            for h, ops in _hunks_with_ops(path, old, new):
                if h["id"] == hunk:
                    return path, h, ops
        raise NotFound(f"no hunk {hunk} in the diff (refresh the diff)")

    def _rejection(self, path: str, reason: str, h: pr.HunkInfo | None) -> pr.Rejection:
        status = "added" if not self.files[path][0] else "deleted" if not self.files[path][1] else "modified"
        rej = pr.Rejection(
            id=len(self.rejections) + 1, hunk=h["id"] if h else None, path=path, old_path=None, status=status,
            header=h["header"] if h else "", reason=reason, whole_file=h is None,
            new_start=h["new_start"] if h else 0, new_lines=h["new_lines"] if h else 0,
            excerpt=[str(ln[1]) for ln in (h["lines"] or []) if ln[0] in "+-"][:8] if h else [],
            where=f"{h['new_start']}-{h['new_start'] + h['new_lines'] - 1}" if h else "",
            created_at=time.time(), sent=False)
        self.rejections.append(rej)
        return rej

    def handle(self, method: str, p: dict[str, Any]) -> Any:
        sid = p.get("id", "")
        if method == "diff":
            return self.result(sid, p.get("paths"))
        if method == "mark_reviewed":
            keys = [p["hunk"]] if p.get("hunk") else self._file_keys(p["path"])
            before = set(self.reviewed)
            if p.get("reviewed", True):
                self.reviewed |= set(keys)
            else:
                self.reviewed -= set(keys)
            self.undo_stack.append(("mark", before))
            return pr.MarkResult(changed=keys, reviewed=p.get("reviewed", True), review=self.summary())
        if method == "reject":
            path, h, ops = self._find(p["hunk"])
            old, new = self.files[path]
            patched = list(new)
            for a1, a2, b1, b2 in reversed(ops):
                patched[b1:b2] = old[a1:a2]
            rej = self._rejection(path, p.get("reason", ""), h)
            self.undo_stack.append(("reject", (path, new)))
            self.files[path] = (old, patched)
            return pr.RejectResult(rejection=rej, review=self.summary())
        if method == "revert_file":
            old, new = self.files[p["path"]]
            rej = self._rejection(p["path"], p.get("reason", ""), None)
            self.undo_stack.append(("revert_file", (p["path"], new)))
            self.files[p["path"]] = (old, list(old))
            return pr.RejectResult(rejection=rej, review=self.summary())
        if method == "comment":
            c = pr.Comment(id=len(self.comments) + 1, path=p["path"], line=p["line"],
                           end_line=p.get("end_line", p["line"]), text=p["text"], hunk=None,
                           excerpt=[], created_at=time.time(), sent=False)
            self.comments.append(c)
            self.undo_stack.append(("comment", None))
            return pr.CommentResult(comment=c, review=self.summary())
        if method == "undo":
            if not self.undo_stack:
                raise UsageError("nothing to undo")
            kind, data = self.undo_stack.pop()
            if kind == "mark":
                self.reviewed = data
            elif kind == "comment":
                self.comments.pop()
            else:
                path, new = data
                self.files[path] = (self.files[path][0], new)
                self.rejections.pop()
            return pr.UndoResult(undone=kind, review=self.summary())
        if method == "review":
            pending: list[pr.Rejection | pr.Comment] = [r for r in self.rejections if not r["sent"]]
            pending += [c for c in self.comments if not c["sent"]]
            msg = "\n".join(f"{x['path']}: {x.get('reason') or x.get('text') or ''}" for x in pending)
            out = pr.ReviewResult(message=msg, rejections=sum(1 for r in self.rejections if not r["sent"]),
                                  comments=sum(1 for c in self.comments if not c["sent"]), sent=False,
                                  review=self.review_json())
            if p.get("send"):
                if not msg:
                    raise UsageError("nothing to send")
                self.sent.append(msg)
                for x in pending:
                    x["sent"] = True
                self.undo_stack.clear()
                out["sent"], out["via"], out["review"] = True, "keys", self.review_json()
            return out
        if method == "merge":
            if "conflict" in str(p.get("message", "")):
                raise GitError("merge conflict in src/mod0.py; nothing changed")
            return pr.MergeResult(commit="c0ffee1234567", strategy=p.get("strategy") or "squash", files_changed=10,
                                  base_branch="main", message=p.get("message", ""))
        if method == "discard":
            n = sum(1 for o, n_ in self.files.values() if o != n_)
            self.files = {k: (o, list(o)) for k, (o, _n) in self.files.items()}
            return pr.DiscardResult(files=n, added=0, removed=0, base="0" * 40)
        if method == "check":
            self.check = pr.CheckResult(status="passed", exit_code=0, duration_s=1.5, command="pytest -q",
                                        reason="", tail="10 passed", finished_at=time.time())
            return self.check
        if method == "send_check":
            return pr.SendCheckResult(message="the check failed", via="keys")
        raise KeyError(method)

    def _file_keys(self, path: str) -> list[str]:
        old, new = self.files[path]
        ids = [h["id"] for h in hunks_of(path, old, new)] if not path.endswith(".png") else []
        return ids or ["file:" + hashlib.sha1(path.encode()).hexdigest()[:12]]


REVIEW_METHODS = {"diff", "mark_reviewed", "reject", "revert_file", "comment", "undo", "review", "merge",
                  "discard", "check", "send_check"}
