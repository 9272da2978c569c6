"""The CLI's fast path: `ls`, `screen`, `keys`, `send`, `approve`, `deny`, `log`,
`daemon status` and `diff` without click, asyncio or the protocol's TypedDict modules.

A CLI call should cost little more than the interpreter's start (issue 15); click alone
takes 15 ms to import. `parse` accepts exactly what click accepts for these commands when
the input is valid; anything else (help, a typo, a missing argument) returns None and the
click CLI (`cli_full`) handles it, so usage errors read the same. The click commands call
the functions below too: both paths print the same bytes.
"""

from __future__ import annotations

import os
import sys

from workbench.cli_render import (
    approve_text,
    deny_text,
    entry_text,
    link_lines,
    ls_lines,
    screen_text,
    send_text,
    state_text,
    status_lines,
    to_json,
)
from workbench.core.escapes import one_line
from workbench.daemon.client import Client
from workbench.errors import DaemonNotRunning, WorkbenchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from workbench.protocol import agent as pa
    from workbench.protocol import hosts as ph
    from workbench.protocol import session as ps
    from workbench.protocol import terminal as pt
    from workbench.protocol.method import Method

    P = TypeVar("P")
    R = TypeVar("R")

    LS, STATUS, GET = ps.LS, ps.STATUS, ps.GET
    KEYS, SCREEN, SUBSCRIBE = pt.KEYS, pt.SCREEN, pt.SUBSCRIBE
    SEND, APPROVE, DENY, LOG = pa.SEND, pa.APPROVE, pa.DENY, pa.LOG
    HOSTS = ph.HOSTS
else:

    class _Spec:
        """A method as the client uses it: its name. The typed `Method` objects live in the
        protocol modules, which take 7 ms to import; tests check the names agree."""

        __slots__ = ("name",)

        def __init__(self, name: str) -> None:
            self.name = name

    LS, STATUS, GET = _Spec("ls"), _Spec("status"), _Spec("get")
    KEYS, SCREEN, SUBSCRIBE = _Spec("keys"), _Spec("screen"), _Spec("subscribe")
    SEND, APPROVE, DENY, LOG = _Spec("send"), _Spec("approve"), _Spec("deny"), _Spec("log")
    HOSTS = _Spec("hosts")

_ANSI = r"\033\[[0-?]*[ -/]*[@-~]"  # what click.echo strips when not on a terminal


def echo(text: str, *, nl: bool = True, err: bool = False, color: bool | None = None) -> None:
    """click.echo for str: ANSI codes stripped unless on a terminal (or `color` says)."""
    f = sys.stderr if err else sys.stdout
    if nl:
        text += "\n"
    if text:
        if "\033" in text and (color is False or (color is None and not f.isatty())):
            import re  # only here: `re` is a third of a one-shot call's CPU

            text = re.sub(_ANSI, "", text)
        f.write(text)
    f.flush()


def request(spec: Method[P, R], params: P, timeout: float | None = 300) -> R:
    """One request on a connection of its own (the daemon starts if it is not running)."""
    with Client("cli", timeout=timeout, pipeline=True) as c:
        return c.request(spec, params)


# --- the commands (the click commands call these too) -------------------------------------


def ls(as_json: bool) -> None:
    """Every host's sessions (remote ones as HOST:ID), then a line per remote host's link."""
    no_params: ps.NoParams = {}
    hosts_params: ph.HostsParams = {}
    with Client("cli", pipeline=True) as c:
        sessions = c.request(LS, no_params)
        links = [] if as_json else _links(c, hosts_params)
    if as_json:
        echo(to_json([s if "host" in s else {**s, "host": "local"} for s in sessions]))
    else:
        echo("\n".join([*ls_lines(sessions, sys.stdout.isatty()), *link_lines(links)]))


def status(as_json: bool) -> None:
    """Never starts a daemon: asking whether one runs must not change the answer."""
    no_params: ps.NoParams = {}
    try:
        with Client("cli", autostart=False, timeout=60, pipeline=True) as c:
            st = c.request(STATUS, no_params)
            hosts_params: ph.HostsParams = {}
            links = [] if as_json else _links(c, hosts_params)
    except DaemonNotRunning:
        raise DaemonNotRunning("the daemon is not running", hint="`workbench daemon start` starts it") from None
    echo(to_json(st) if as_json else "\n".join([*status_lines(st), *link_lines(links)]))


def _links(c: Client, params: ph.HostsParams) -> list[ph.HostLink]:
    """Remote hosts' links; a broken hosts.toml is a warning here, not a failed `ls`."""
    try:
        return c.request(HOSTS, params)
    except WorkbenchError as e:
        echo(f"warning: {one_line(str(e), 500)}", err=True)
        return []


def keys(session_id: str, text: str) -> None:
    params: pt.KeysParams = {"id": session_id, "text": text}
    request(KEYS, params)


def screen(session_id: str, ansi: bool) -> None:
    params: pt.ScreenParams = {"id": session_id, "ansi": ansi}
    echo(screen_text(request(SCREEN, params), ansi), color=ansi or None)


def send(session_id: str, text: str) -> None:
    params: pa.SendParams = {"id": session_id, "text": text}
    echo(send_text(request(SEND, params)))


def approve(session_id: str, always: bool) -> None:
    params: pa.ApproveParams = {"id": session_id, "always": always}
    echo(approve_text(request(APPROVE, params), always))


def deny(session_id: str, reason: str) -> None:
    params: pa.DenyParams = {"id": session_id, "reason": reason}
    echo(deny_text(request(DENY, params)))


def log(session_id: str, follow: bool, as_json: bool, full: bool) -> None:
    """A session's transcript; with `follow`, new entries and state changes until it is removed."""
    with Client("cli", timeout=None if follow else 300, pipeline=True) as c:
        get: ps.IdParams = {"id": session_id}
        sid = c.request(GET, get)["id"]
        if follow:
            sub: pt.SubscribeParams = {"ids": [sid]}
            c.request(SUBSCRIBE, sub)
        which: ps.EventsParams = {"id": sid}
        entries = c.request(LOG, which)
        if as_json and not follow:
            echo(to_json(entries))
            return
        last = 0
        for e in entries:
            last = max(last, int(e["seq"]))
            _emit(entry_text(e, as_json, full, sid))
        if not follow:
            return
        state = None
        while True:
            ev = c.next_event()
            if ev is None:
                continue
            data = ev.get("data") or {}
            if ev.get("event") == "log" and data.get("session") == sid and int(data.get("seq", 0)) > last:
                last = int(data["seq"])
                _emit(entry_text(data, as_json, full, sid))
            elif ev.get("event") == "session" and data.get("id") == sid and data.get("state") != state:
                state = data.get("state")
                if not as_json:
                    echo(state_text(data))
            elif ev.get("event") == "removed" and data.get("id") == sid:
                return


def _emit(text: str | None) -> None:
    if text is not None:
        echo(text)


def diff(session_id: str, stat: bool, as_json: bool) -> None:
    from workbench.cli_diff import diff as run

    run(session_id, stat, as_json, echo)


# --- argv -> a call, the way click would parse it ----------------------------------------

# command -> (positional names, whether the last takes the rest (nargs=-1, required),
#             flags {option: parameter}, valued options {option: parameter})
_Shape = tuple[tuple[str, ...], bool, dict[str, str], dict[str, str]]
_SHAPES: dict[str, _Shape] = {
    "ls": ((), False, {"--json": "as_json"}, {}),
    "status": ((), False, {"--json": "as_json"}, {}),
    "keys": (("session_id", "text"), True, {}, {}),
    "screen": (("session_id",), False, {"--ansi": "ansi"}, {}),
    "send": (("session_id", "text"), True, {}, {}),
    "approve": (("session_id",), False, {"--always": "always"}, {}),
    "deny": (("session_id",), False, {}, {"--reason": "reason"}),
    "log": (("session_id",), False, {"--follow": "follow", "-f": "follow", "--json": "as_json", "--full": "full"}, {}),
    "diff": (("session_id",), False, {"--stat": "stat", "--json": "as_json"}, {}),
}
_DEFAULTS: dict[str, dict[str, Any]] = {"deny": {"reason": ""}}
_RUN: dict[str, Callable[..., None]] = {
    "ls": ls, "status": status, "keys": keys, "screen": screen, "send": send, "approve": approve,
    "deny": deny, "log": log, "diff": diff,
}


def parse(argv: list[str]) -> tuple[Callable[..., None], dict[str, Any]] | None:
    """The function and keyword arguments for `argv`, or None to leave it to click."""
    if not argv:
        return None
    name, rest = argv[0], argv[1:]
    if name == "daemon":  # `daemon status` alone of the daemon group
        if not rest or rest[0] != "status":
            return None
        name, rest = "status", rest[1:]
    elif name == "status":
        return None
    shape = _SHAPES.get(name)
    if shape is None:
        return None
    positional, variadic, flags, valued = shape
    kwargs: dict[str, Any] = {p: False for p in flags.values()}
    kwargs.update(_DEFAULTS.get(name, {}))
    args: list[str] = []
    i = 0
    while i < len(rest):
        a = rest[i]
        i += 1
        if a == "--":
            args += rest[i:]
            break
        if len(a) > 1 and a[0] == "-":
            if a in flags:
                kwargs[flags[a]] = True
            elif a in valued and i < len(rest) and not rest[i].startswith("-"):
                kwargs[valued[a]] = rest[i]
                i += 1
            else:  # help, `--opt=value`, a value that looks like an option, a typo: click's
                return None
        else:
            args.append(a)
    if len(args) < len(positional) or (len(args) > len(positional) and not variadic):
        return None
    for p, value in zip(positional, args, strict=False):
        kwargs[p] = value
    if variadic:
        kwargs[positional[-1]] = " ".join(args[len(positional) - 1:])
    return _RUN[name], kwargs


def _text_streams_ok() -> bool:
    """click re-wraps a stream whose encoding is ASCII (a misconfigured locale): leave that to it."""
    return all((getattr(f, "encoding", "") or "").lower().replace("-", "").replace("_", "") == "utf8"
               for f in (sys.stdout, sys.stderr))


def run(argv: list[str]) -> int | None:
    """Run `argv` if the fast path takes it: its exit code (None for 0); -1 if it does not."""
    call = parse(argv) if _text_streams_ok() else None
    if call is None:
        return -1
    fn, kwargs = call
    try:
        fn(**kwargs)
    except WorkbenchError as e:
        echo(f"error: {one_line(str(e), 1000)}", err=True)
        return e.exit_code
    except KeyboardInterrupt:  # as click reports it: a new line, then `error: aborted`
        echo("", err=True)
        echo("error: aborted", err=True)
        return 1
    except BrokenPipeError:  # as click: exit 1, nothing more written to the closed pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return None
