"""NUL in terminal input (issue 16): ctrl+space is the byte 0, so the `keys` method's `data`
carries it and `workbench keys ID '\\0'` sends it; every other string of the protocol still
refuses NUL."""

import sys
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict, get_type_hints

import pytest

from tests.wb import Wb
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.catalog import METHODS
from workbench.protocol.validate import RAW_BYTES, ParamError, compile_checker

# Reads one keystroke in raw mode and shows its bytes (NUL in a cooked line would be
# printed as nothing visible).


def reader(mark: str) -> str:
    """The command line (typed into a shell) of the reader; it prints READY<mark> when it reads."""
    return (f"{sys.executable} -c \"import os, tty; tty.setraw(0); print('RE''ADY{mark}', flush=True); "
            "print('got', repr(os.read(0, 8)))\"")


def test_keys_data_may_hold_nul_and_nothing_else_may() -> None:
    assert pt.KEYS.validate({"id": "a", "data": "x\0y"}) == {"id": "a", "data": "x\0y"}
    for raw, message in (({"id": "a\0", "data": "x"}, "'id' contains a NUL byte"),
                         ({"id": "a", "text": "x\0"}, "'text' contains a NUL byte"),
                         ({"id": "a", "data": 0}, "'data' must be str")):
        with pytest.raises(ParamError, match=message):
            pt.KEYS.validate(raw)
    with pytest.raises(ParamError, match="NUL"):
        ps.GET.validate({"id": "\0"})


def test_only_terminal_data_is_marked_raw() -> None:
    """The opt-in stays narrow: ids, names, paths, messages refuse NUL in every method."""
    raw = sorted(
        (name, key)
        for name, spec in METHODS.items()
        for key, ann in get_type_hints(spec.params, include_extras=True).items()
        if RAW_BYTES in getattr(ann, "__metadata__", ()) or any(
            RAW_BYTES in getattr(a, "__metadata__", ()) for a in getattr(ann, "__args__", ()))
    )
    assert raw == [("keys", "data")]


def test_an_annotation_without_the_marker_is_its_plain_type() -> None:
    class P(TypedDict):
        a: Annotated[str, "a note"]
        b: NotRequired[Annotated[str, RAW_BYTES]]

    check = compile_checker(P)
    assert check({"a": "x", "b": "\0"}) == {"a": "x", "b": "\0"}
    with pytest.raises(ParamError, match="'a' contains a NUL byte"):
        check({"a": "\0"})
    with pytest.raises(ParamError, match="missing parameter 'a'"):
        check({"b": "x"})


def test_the_cli_and_the_socket_send_nul_to_the_program(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--name", "nul")
    wb.wait_state(sid, "running", timeout=30)
    wb.run("keys", sid, reader("1") + "\\r")
    wb.wait_screen(sid, "READY1", timeout=30)
    wb.run("keys", sid, "\\0")  # the C escape; `\\c@` and `\\x00` are the same byte
    wb.wait_screen(sid, "got b'\\x00'", timeout=30)
    # raw data over the socket, as the UI sends a key
    from workbench.daemon.client import Client

    wb.run("keys", sid, reader("2") + "\\r")
    wb.wait_screen(sid, "READY2", timeout=30)
    params: Any = pt.KeysParams(id=sid, data="\0")
    with Client("test", autostart=False, timeout=60) as c:
        assert c.request(pt.KEYS, params) == {"bytes": 1}
    wb.wait_screen(sid, "got b'\\x00'", timeout=30)
    assert wb.screen(sid).count("got b'\\x00'") == 2
