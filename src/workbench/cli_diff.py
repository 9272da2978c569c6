"""`workbench diff ID [--stat] [--json]` on the CLI's fast path (`cli_fast`): the same
requests and output as the click command in `commands/review.py`, without click or the
protocol's modules at import."""

from __future__ import annotations

import sys

from workbench.core.escapes import strip_escapes
from workbench.daemon.client import Client

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from workbench.protocol import review as rv

    DIFF = rv.DIFF
else:

    class _Spec:  # the method's name is all the client sends (cli_fast._Spec)
        __slots__ = ("name",)

        def __init__(self, name: str) -> None:
            self.name = name

    DIFF = _Spec("diff")


RETRIES = 3


def fetch(session_id: str, fmt: str = "json") -> rv.DiffReply:
    """The whole diff, page by page (a big diff does not fit in one reply), on one
    connection. The daemon computes a diff once per change and serves its pages from that;
    if the session changed between pages, start again (a few times, then take the pages as
    they come, the newest file list winning)."""
    with Client("cli", pipeline=True) as c:
        for attempt in range(1, RETRIES + 1):
            whole = _pages(c, session_id, fmt, settle=attempt == RETRIES)
            if whole is not None:
                return whole
    raise AssertionError("unreachable: the last attempt settles")


def _pages(c: Client, session_id: str, fmt: str, *, settle: bool) -> rv.DiffReply | None:
    """All pages of one diff; None when its digest moved meanwhile (unless `settle`)."""
    params: rv.DiffParams = {"id": session_id, "format": "unified" if fmt == "unified" else "json"}
    if fmt == "unified":
        params["text_only"] = True  # the patch text is all it needs
    first = c.request(DIFF, params)
    files = first["files"]
    texts = [first.get("text", "")]
    nxt = first.get("next")
    while nxt is not None:
        params["offset"] = nxt
        page = c.request(DIFF, params)
        if page.get("digest") != first.get("digest"):
            if not settle:
                return None
            first = page  # keep the newest file list
        for i, f in enumerate(page["files"]):
            if f.get("hunks") is not None and i < len(files):
                files[i] = f
        texts.append(page.get("text", ""))
        nxt = page.get("next")
    first["files"] = files
    first["text"] = "".join(texts)
    return first


def diff(session_id: str, stat: bool, as_json: bool, echo: Callable[..., None]) -> None:
    from workbench.cli_render import to_json

    if stat:
        with Client("cli", pipeline=True) as c:
            params: rv.DiffParams = {"id": session_id, "stat": True, "text_only": not as_json}
            res = c.request(DIFF, params)
        if as_json:
            echo(to_json({"base": res["base"], "stat": res["stat"], "files": res["files"], **_ignored(res)}))
        else:
            from workbench.cli_render import check_line

            echo(res["text"], nl=False)
            chk = res.get("check")
            if chk:
                echo(check_line(chk, res["digest"]))
        return
    if as_json:
        whole = fetch(session_id)
        echo(to_json({"base": whole["base"], "digest": whole["digest"], "stat": whole["stat"],
                      "files": whole["files"], "review": whole["review"], "check": whole["check"],
                      **_ignored(whole)}))
        return
    whole = fetch(session_id, "unified")
    text = whole["text"]
    if sys.stdout.isatty():
        text = strip_escapes(text)  # agent-written content must not drive the terminal
    echo(text, nl=False)
    # On stderr: stdout stays a patch `git apply` takes.
    line = ignored_line(whole)
    if line:
        echo(line, err=True)


def _ignored(res: rv.DiffReply) -> dict[str, object]:
    return {"ignored": res.get("ignored", 0), "ignored_where": res.get("ignored_where", [])}


def ignored_line(res: rv.DiffReply) -> str:
    """"ignored: 2 files (node_modules/, pkg/__pycache__/)": the review noise left out."""
    count = int(res.get("ignored", 0) or 0)
    if not count:
        return ""
    from workbench.core.review_noise import summary

    return summary(count, [strip_escapes(w) for w in res.get("ignored_where", [])])
