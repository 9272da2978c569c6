"""Suggestions from tool output: each parser turns one source's output into `Found` entries.

Everything here is pure (text in, entries out) so the parsers are tested without running
anything. All the text comes from the repository or from tools run on it, so it is treated
as untrusted: escapes stripped, lengths capped, titles one line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench.core.escapes import one_line, strip_escapes

EVIDENCE_CHARS = 2000
GROUP_LINES = 12  # evidence lines kept per group (file, rule)
CLOSING = ("Keep the change focused on this. Run the repository's tests or check before you finish, "
           "and say what you changed.")


@dataclass
class Found:
    source: str  # check | lint | todo | ci | issue | log
    key: str  # what makes it the same suggestion from one scan to the next
    title: str
    evidence: str
    prompt: str
    rank: float = 0.0
    locations: list[str] = field(default_factory=list)


def suggestion_id(repo: str, source: str, key: str) -> str:
    """Stable across scans and daemon restarts: the repo, the source and the source's key."""
    return hashlib.sha256(f"{repo}\0{source}\0{key}".encode("utf-8", "surrogateescape")).hexdigest()[:10]


def clip(text: str, chars: int = EVIDENCE_CHARS, *, keep: str = "head") -> str:
    """Inert text at most `chars` long; `keep` says which end survives."""
    text = strip_escapes(text).strip("\n")
    if len(text) <= chars:
        return text
    return text[: chars - 4] + "\n..." if keep == "head" else "...\n" + text[-(chars - 4):]


def make_prompt(task: str, source: str, evidence: str) -> str:
    return f"{task}\n\nEvidence ({source}):\n```\n{evidence}\n```\n\n{CLOSING}"


def _found(source: str, key: str, title: str, task: str, evidence: str, rank: float,
           locations: Iterable[str] = ()) -> Found:
    ev = clip(evidence)
    return Found(source, key, one_line(strip_escapes(title), 160), ev, make_prompt(task, source, ev), rank,
                 list(locations)[:20])


# --------------------------------------------------------------------------- the check (pytest)

_SUMMARY = re.compile(r"^(FAILED|ERROR) ([^\s(]\S*)(?: - (.*))?$")  # not unittest's "FAILED (failures=1)"
_UNITTEST = re.compile(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)$")  # FAIL: test_x (module.Class.test_x)
_FILE_LINE = re.compile(r'^\s*File "([^"]+)", line (\d+)')
_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$")
_LOCATION = re.compile(r"^([\w./-]+\.\w+):(\d+): ")


def _sections(lines: list[str]) -> dict[str, list[str]]:
    """pytest's `____ test_name ____` failure sections, by their title."""
    out: dict[str, list[str]] = {}
    cur: list[str] | None = None
    for ln in lines:
        m = _SECTION.match(ln)
        if m:
            cur = out.setdefault(m.group(1).strip(), [])
            continue
        if ln.startswith("=" * 5):
            cur = None
        elif cur is not None:
            cur.append(ln)
    return out


def check_failures(output: str, command: str, exit_code: int | None, reason: str = "") -> list[Found]:
    """One entry per failing test in pytest's short summary; else one for the whole check."""
    text = strip_escapes(output)
    lines = text.splitlines()
    sections = _sections(lines)
    out: list[Found] = []
    seen: set[str] = set()
    for ln in lines:
        m = _SUMMARY.match(ln.strip())
        if not m or m.group(2) in seen:
            continue
        node = m.group(2)
        seen.add(node)
        name = node.rsplit("::", 1)[-1]
        body = sections.get(name) or sections.get(node.split("::", 1)[-1].replace("::", ".")) or []
        locs = [f"{x.group(1)}:{x.group(2)}" for x in map(_LOCATION.match, body) if x]
        evidence = clip("\n".join(body), 1600, keep="tail") + ("\n" if body else "") + ln.strip()
        what = "Fix the failing test" if m.group(1) == "FAILED" else "Fix the error in"
        out.append(_found("check", node, f"{'Failing test' if m.group(1) == 'FAILED' else 'Error in'} {node}",
                          f"{what} `{node}` (the check `{command}` fails on the main branch).",
                          evidence, 100.0, locs or [node.split("::", 1)[0]]))
    if not out:
        out = _unittest_failures(lines, command)
    if out or (exit_code == 0 and not reason):
        return out
    why = f"exit code {exit_code}" if exit_code is not None else (reason or "failed")
    return [_found("check", f"command:{command}", f"The check `{command}` fails ({why})",
                   f"The check `{command}` fails on the main branch ({why}). Find out why and fix it.",
                   clip(text, keep="tail"), 90.0)]


def _unittest_failures(lines: list[str], command: str) -> list[Found]:
    """unittest's `FAIL: test (module.Class.test)` blocks, one entry each, with the traceback."""
    out: list[Found] = []
    for i, ln in enumerate(lines):
        m = _UNITTEST.match(ln.strip())
        if not m or any(f.key == m.group(3) for f in out):
            continue
        body: list[str] = []
        for nxt in lines[i + 2:]:  # past the header's dashes, up to the next rule
            if nxt.startswith(("=" * 10, "-" * 10)):
                break
            body.append(nxt)
        module_file = m.group(3).rsplit(".", 2)[0].replace(".", "/") + ".py"
        locs = [f"{module_file}:{x.group(2)}" for x in map(_FILE_LINE.match, body)
                if x and x.group(1).endswith(module_file)]
        kind = "Failing test" if m.group(1) == "FAIL" else "Error in"
        out.append(_found("check", m.group(3), f"{kind} {m.group(3)}",
                          f"Fix the failing test `{m.group(3)}` (the check `{command}` fails on the main branch).",
                          clip("\n".join(body).strip("\n"), 1600, keep="tail"), 100.0, locs[-1:] or [module_file]))
    return out


# --------------------------------------------------------------------------- linters


def _group_by_file(tool: str, rows: list[tuple[str, int, str, str]], rank: float) -> list[Found]:
    """rows: (path, line, rule, message) -> one entry per file, the file with most first."""
    files: dict[str, list[tuple[str, int, str, str]]] = {}
    for r in rows:
        files.setdefault(r[0], []).append(r)
    out = []
    for path, items in sorted(files.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        items.sort(key=lambda r: r[1])
        rules = sorted({r[2] for r in items if r[2]})
        ev = "\n".join(f"{p}:{ln}: {rule + ' ' if rule else ''}{msg}" for p, ln, rule, msg in items[:GROUP_LINES])
        if len(items) > GROUP_LINES:
            ev += f"\n... and {len(items) - GROUP_LINES} more"
        n = len(items)
        title = f"{tool}: {n} problem{'s' if n > 1 else ''} in {path}" + (f" ({', '.join(rules[:4])})" if rules else "")
        out.append(_found("lint", f"{tool}:{path}", title,
                          f"Fix the {tool} problems in `{path}` without silencing them.", ev,
                          rank + min(n, 50) / 100, [f"{p}:{ln}" for p, ln, _, _ in items]))
    return out


def _rel(path: str, root: str) -> str:
    root = root.rstrip("/") + "/"
    return path[len(root):] if path.startswith(root) else path


def ruff(output: str, root: str) -> list[Found]:
    """`ruff check --output-format=json` -> per file."""
    data = _json_list(output, "ruff")
    rows = [(_rel(str(d.get("filename", "?")), root), int((d.get("location") or {}).get("row") or 0),
             str(d.get("code") or ""), one_line(str(d.get("message", "")), 300)) for d in data if isinstance(d, dict)]
    return _group_by_file("ruff", rows, 50.0)


_MYPY = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?:\d+:)? error: (?P<msg>.*?)(?:  \[(?P<rule>[\w-]+)\])?$")


def mypy(output: str, root: str) -> list[Found]:
    """mypy's `file:line: error: message  [code]` lines -> per file."""
    rows = []
    for ln in strip_escapes(output).splitlines():
        m = _MYPY.match(ln)
        if m:
            rows.append((_rel(m["path"], root), int(m["line"]), m["rule"] or "", one_line(m["msg"], 300)))
    return _group_by_file("mypy", rows, 45.0)


def eslint(output: str, root: str) -> list[Found]:
    """`eslint -f json` -> per file."""
    rows = []
    for f in _json_list(output, "eslint"):
        if not isinstance(f, dict):
            continue
        for m in f.get("messages") or []:
            if isinstance(m, dict):
                rows.append((_rel(str(f.get("filePath", "?")), root), int(m.get("line") or 0),
                             str(m.get("ruleId") or ""), one_line(str(m.get("message", "")), 300)))
    return _group_by_file("eslint", rows, 45.0)


def _json_list(output: str, tool: str) -> list[Any]:
    start = output.find("[")
    try:
        data = json.loads(output[start:]) if start >= 0 else []
    except ValueError:
        raise ValueError(f"{tool}: its JSON output could not be read") from None
    return data if isinstance(data, list) else []


# --------------------------------------------------------------------------- TODO comments


@dataclass
class TodoHit:
    path: str
    line: int
    text: str
    time: float = 0.0  # author time by blame; 0 when not blamed


def todos(hits: list[TodoHit], total: int, max_groups: int) -> list[Found]:
    """Grouped by file, the file with the newest comment first (blame time, then the
    number of hits); `total` is how many hits the grep found in all."""
    files: dict[str, list[TodoHit]] = {}
    for h in hits:
        files.setdefault(h.path, []).append(h)
    ranked = sorted(files.items(), key=lambda kv: (-max(h.time for h in kv[1]), -len(kv[1]), kv[0]))
    out = []
    for i, (path, items) in enumerate(ranked[:max_groups]):
        items.sort(key=lambda h: (-h.time, h.line))
        ev = "\n".join(f"{h.path}:{h.line}: {one_line(h.text.strip(), 200)}" for h in items[:GROUP_LINES])
        if len(items) > GROUP_LINES:
            ev += f"\n... and {len(items) - GROUP_LINES} more in this file"
        n = len(items)
        first = one_line(items[0].text.strip(), 80)
        title = f"{n} TODO{'s' if n > 1 else ''} in {path}: {first}"
        out.append(_found("todo", f"todo:{path}", title,
                          f"Resolve the TODO/FIXME/XXX comments in `{path}`: do what each asks, or remove it "
                          "if it no longer applies.", ev, 10.0 - i / 1000, [f"{h.path}:{h.line}" for h in items]))
    return out


def parse_grep(raw: bytes, limit: int) -> tuple[list[TodoHit], int]:
    """`git grep -n -z` output -> (the first `limit` hits, how many there were)."""
    hits: list[TodoHit] = []
    total = 0
    for rec in raw.split(b"\n"):
        parts = rec.split(b"\0", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        total += 1
        if len(hits) < limit:
            path, text = parts[0].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
            hits.append(TodoHit(path, int(parts[1]), text))
    return hits, total


def blame_times(porcelain: bytes) -> dict[int, float]:
    """`git blame --porcelain` -> final line number -> author time."""
    times: dict[str, float] = {}
    out: dict[int, float] = {}
    sha, line = "", 0
    for ln in porcelain.split(b"\n"):
        parts = ln.split(b" ")
        if len(parts) >= 3 and len(parts[0]) in (40, 64) and parts[1].isdigit() and parts[2].isdigit():
            sha, line = parts[0].decode(), int(parts[2])
            if sha in times:
                out[line] = times[sha]
        elif ln.startswith(b"author-time ") and sha:
            with_time = parts[1] if len(parts) > 1 else b"0"
            times[sha] = float(with_time) if with_time.isdigit() else 0.0
            out[line] = times[sha]
    return out


# --------------------------------------------------------------------------- gh


def ci_runs(runs_json: str, logs: dict[str, str]) -> list[Found]:
    """`gh run list --json ...` -> the newest failing run of each workflow and branch."""
    out: list[Found] = []
    seen: set[str] = set()
    for r in _json_list(runs_json, "gh run list"):
        if not isinstance(r, dict) or r.get("conclusion") not in ("failure", "timed_out", "startup_failure"):
            continue
        wf, branch = str(r.get("workflowName") or r.get("name") or "CI"), str(r.get("headBranch") or "")
        key = f"ci:{wf}:{branch}"
        if key in seen:
            continue
        seen.add(key)
        rid = str(r.get("databaseId") or "")
        head = (f"workflow {wf!r} on {branch or 'its branch'}: {r.get('conclusion')} "
                f"({one_line(str(r.get('displayTitle') or ''), 120)}) {r.get('url') or ''}").strip()
        ev = head + ("\n" + clip(logs[rid], 1600, keep="tail") if logs.get(rid) else "")
        out.append(_found("ci", key, f"CI failing: {wf} on {branch or '?'}",
                          f"The CI workflow `{wf}` fails on `{branch}`. Find the cause in its log and fix it.",
                          ev, 80.0, []))
    return out


def issues(issues_json: str, limit: int) -> list[Found]:
    """`gh issue list --json number,title,body,url` -> one entry per open issue."""
    out = []
    for i, it in enumerate(_json_list(issues_json, "gh issue list")[:limit]):
        if not isinstance(it, dict) or not str(it.get("number", "")).isdigit():
            continue
        n, title = int(it["number"]), one_line(str(it.get("title") or ""), 140)
        ev = f"#{n} {title} {it.get('url') or ''}".strip() + "\n\n" + clip(str(it.get("body") or ""), 1500)
        out.append(_found("issue", f"issue:{n}", f"Issue #{n}: {title}",
                          f"Work on the repository's open issue #{n}: {title}.", ev, 20.0 - i / 1000))
    return out


# --------------------------------------------------------------------------- logs

_ERROR = re.compile(r"\b(?:ERROR|FATAL|CRITICAL)\b")
_VOLATILE = re.compile(r"0x[0-9a-fA-F]+|\d+")


def log_problems(text: str, where: str) -> list[Found]:
    """Tracebacks and `ERROR` lines of a log, the same one counted once (numbers ignored)."""
    lines = strip_escapes(text).splitlines()
    groups: dict[str, tuple[str, str, int]] = {}  # key -> (title, evidence, count)
    order: list[str] = []

    def add(key: str, title: str, ev: str) -> None:
        if key in groups:
            title, _, n = groups[key]
            groups[key] = (title, ev, n + 1)  # the newest occurrence as evidence
        else:
            groups[key] = (title, ev, 1)
            order.append(key)

    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.strip().startswith("Traceback (most recent call last):"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            last = lines[j] if j < len(lines) else lines[j - 1]
            frames = [x.strip() for x in lines[i:j] if x.strip().startswith("File ")]
            key = _VOLATILE.sub("N", last.strip()) + "|" + (frames[-1] if frames else "")
            add("tb:" + key, f"Traceback in {where}: {last.strip()}", "\n".join(lines[i:j + 1]))
            i = j + 1
            continue
        if _ERROR.search(ln):
            msg = ln[_ERROR.search(ln).start():].strip()  # type: ignore[union-attr]
            add("err:" + _VOLATILE.sub("N", msg), f"Error in {where}: {msg}", ln.strip())
        i += 1
    out = []
    for k in order[-30:]:
        title, ev, n = groups[k]
        more = f"\n(seen {n} times)" if n > 1 else ""
        out.append(_found("log", f"log:{k}", title,
                          f"This error appears in {where}. Find its cause in the code and fix it.",
                          clip(ev, 1600, keep="tail") + more, 60.0 + min(n, 50) / 100))
    return out
