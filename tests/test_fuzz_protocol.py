"""Fuzzing (hypothesis) of what untrusted bytes reach first: the socket protocol decoder and
parameter access, the escape-sequence filter, and a live daemon fed random lines and random
PTY output. None may raise anything but a clear error, hang, or take the daemon down.

The patch parser/applier, the diff parser and the emulator on their own are fuzzed next to
their unit tests (tests/test_patch.py, tests/test_diff.py, tests/test_screen.py); the
emulator inside the daemon is fuzzed here, the parsers on git's output and through the
daemon in tests/test_fuzz_parsers.py.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from typing import Any, Literal, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.escapes import one_line, strip_escapes
from workbench.daemon.protocol import MAX_LINE, ProtocolError, decode, encode, hello, request
from workbench.protocol.validate import ParamError, compile_checker

# --------------------------------------------------------------------------- decoder

_JSONISH = st.lists(
    st.sampled_from([
        b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"\\u", b"d800", b"1e999", b"-", b"0",
        b"9" * 50, b"true", b"null", b"NaN", b"Infinity", b'"id"', b'"method"', b'"params"',
        b"\xff", b"\xc3", b"\x00", b" ", b"\n", b"\xe2\x80\xa8",
    ]),
    max_size=60,
).map(b"".join)  # fmt: skip


def _check_decode(data: bytes) -> None:
    try:
        msg = decode(data)
    except ProtocolError as e:
        assert str(e).startswith(("malformed JSON", "a message must be", "message too large"))
    else:
        assert isinstance(msg, dict)
        # What decodes re-encodes to exactly one line.
        out = encode(msg)
        assert out.endswith(b"\n") and out.count(b"\n") == 1


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=2000), _JSONISH))
def test_decoder_on_random_bytes_raises_only_protocol_errors(data: bytes) -> None:
    _check_decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 200_000,  # RecursionError inside json
        b'{"a":' * 50_000,
        b"1" * 5000,  # int longer than Python's int-from-str limit (ValueError)
        b'{"id":' + b"9" * 5000 + b"}",
        b"\xff\xfe{}",
        b'{"a":"\\ud800"}',  # a lone surrogate is valid JSON: must still re-encode
        b"",
    ],
    ids=["deep-array", "deep-object", "huge-int", "huge-id", "bad-utf8", "lone-surrogate", "empty"],
)
def test_decoder_edge_cases(data: bytes) -> None:
    _check_decode(data)


def test_decoder_refuses_over_the_size_limit() -> None:
    with pytest.raises(ProtocolError, match="too large"):
        decode(b" " * (MAX_LINE + 1))


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


# One parameter of every kind the protocol declares (functional form: this module's
# annotations are postponed, the checker needs real types).
_AllKinds = TypedDict("_AllKinds", {  # noqa: UP013
    "s": str, "i": int, "f": float, "b": bool, "ls": list[str], "lit": Literal["json", "unified"],
}, total=False)


_ALL = compile_checker(_AllKinds)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(_VALUES, st.dictionaries(st.sampled_from(["s", "i", "f", "b", "ls", "lit", "x"]), _VALUES)))
def test_param_checking_raises_only_param_errors_and_passes_only_typed_values(raw: Any) -> None:
    try:
        out = _ALL(raw)
    except ParamError as e:
        if e.protocol:
            assert raw is not None and not isinstance(raw, dict)
        else:
            assert "parameter '" in str(e)
        return
    for key, v in out.items():
        assert v is not None
        if key == "s":
            assert isinstance(v, str) and "\0" not in v
        elif key == "i":
            assert isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63
        elif key == "f":
            assert isinstance(v, float) and math.isfinite(v)
        elif key == "b":
            assert isinstance(v, bool)
        elif key == "ls":
            assert isinstance(v, list) and all(isinstance(x, str) and "\0" not in x for x in v)
        else:
            assert key == "lit" and v in ("json", "unified")


def test_params_reject_out_of_range_and_non_finite_numbers() -> None:
    with pytest.raises(ParamError, match="out of range"):
        _ALL({"i": 10**30})
    with pytest.raises(ParamError, match="finite"):
        _ALL({"f": float("nan")})
    with pytest.raises(ParamError, match="out of range"):
        _ALL({"f": 10**400})
    assert _ALL({"i": 2**63 - 1}) == {"i": 2**63 - 1}


# --------------------------------------------------------------------------- escape filter

# Anything that can change a terminal: ESC, C0 (but tab and newline), DEL and C1 controls.
_DANGEROUS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ESCAPEY = st.lists(
    st.one_of(
        st.sampled_from([
            "\x1b", "\x1b[", "\x1b]", "\x1bP", "\x1b_", "\x1b^", "\x1bX", "\x07", "\x1b\\", "\x9b", "\x9d",
            "\x9c", "\x90", "0;title", "52;c;aGk=", "8;;http://x", "2J", "?1049h", "H", "31m", "\r",
            "\n", "\t", "\x00", "\x7f", "\x85", "é", "界", "\u202e", "a", " ",
        ]),
        st.text(max_size=5),
    ),
    max_size=50,
).map("".join)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.one_of(_ESCAPEY, st.text(max_size=500)))
def test_strip_escapes_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    out = strip_escapes(text)
    assert not _DANGEROUS.search(out), repr(out)
    assert "\r" not in out
    line = one_line(text, 80)
    assert not _DANGEROUS.search(line) and "\n" not in line and len(line) <= 80
    # Idempotent: filtering twice changes nothing more.
    assert strip_escapes(out) == out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=200))
def test_strip_escapes_keeps_plain_text(text: str) -> None:
    assert strip_escapes(text) == text


def test_strip_escapes_is_linear_on_hostile_input() -> None:
    # Many unterminated OSC/CSI openers: a backtracking regex would go quadratic here.
    for text in ("\x1b]" * 100_000, "\x1b[" * 100_000, "\x1b]0;" + "x" * 1_000_000, "\x1b[1;" * 50_000):
        out = strip_escapes(text)
        assert not _DANGEROUS.search(out)


# --------------------------------------------------------------------------- a live daemon


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def _read_line(s: socket.socket, buf: bytearray) -> dict[str, Any] | None:
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return dict(json.loads(line))


_LINES = st.one_of(
    _JSONISH,
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ")),
    st.builds(
        lambda m, p: encode(request(7, m, p)).rstrip(b"\n"),
        st.sampled_from(["ls", "get", "keys", "screen", "resize", "events", "scrollback", "subscribe", "unsubscribe",
                         "frame", "status", "diff", "comment", "log", "send", "nope", ""]),
        st.dictionaries(st.sampled_from(["id", "text", "data", "size", "start", "count", "after", "ids", "path",
                                         "line", "all", "frames"]), _VALUES, max_size=4),
    ),
)  # fmt: skip


def _names_session(line: bytes, sid: str, name: str) -> bool:
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):
        return False
    params = msg.get("params") if isinstance(msg, dict) else None
    if not isinstance(params, dict):
        return False
    vals = [params.get("id")] + (params["ids"] if isinstance(params.get("ids"), list) else [])
    return any(isinstance(v, str) and v and (sid.startswith(v) or v == name) for v in vals)


@pytest.mark.slow
def test_daemon_survives_random_lines_and_keeps_serving(wb: Any, repo: Any) -> None:
    from workbench import paths
    from workbench.daemon.client import Client

    sid = wb.new(repo, "--sandbox", "off", "--name", "fuzz-target")
    wb.wait_state(sid, "running")
    path = str(paths.socket_path())
    pid = wb.daemon_pid()
    conn = _connect(path)
    buf = bytearray()
    conn.sendall(encode(hello("fuzz")))
    assert _read_line(conn, buf)["result"]["protocol"] == 1  # type: ignore[index]
    state = {"conn": conn, "buf": buf, "sent": 0}

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(line=_LINES)
    def one(line: bytes) -> None:
        line = line.replace(b"\n", b" ")
        if _names_session(line, sid, "fuzz-target"):
            return  # random params must not type into or resize the real session
        c: socket.socket = state["conn"]  # type: ignore[assignment]
        c.sendall(line + b"\n")
        state["sent"] += 1  # type: ignore[operator]
        reply = _read_line(c, state["buf"])  # type: ignore[arg-type]
        while reply is not None and "event" in reply:
            reply = _read_line(c, state["buf"])  # type: ignore[arg-type]
        assert reply is not None, f"daemon closed the connection after {line[:100]!r}"
        if "error" in reply:
            assert reply["error"]["code"] in {"protocol", "usage", "not_found", "failed", "daemon", "git", "config"}
            assert "internal error" not in reply["error"]["message"], reply

    one()
    conn.close()
    # The daemon is the same process and serves a new client and the session as before.
    assert wb.daemon_pid() == pid
    with Client("after") as c:
        assert [s["id"] for s in c.call("ls")] == [sid]
        c.call("keys", id=sid, text=r"echo still-$((6*7))\r")
    wb.wait_screen(sid, "still-42")


@pytest.mark.slow
def test_random_pty_output_never_breaks_the_session(wb: Any, repo: Any, tmp_path: Any) -> None:
    """The emulator adapter inside the daemon, fed random bytes by a real program."""
    import random

    from workbench.daemon.client import Client

    rnd = random.Random(1234)
    blob = bytes(rnd.getrandbits(8) for _ in range(200_000))
    hostile = b"".join(
        rnd.choice([b"\x1b[", b"\x1b]", b"\x1bP", b"\x07", b"\x1b\\", b"\x9b", b"\x1b[?1049h", b"\x1b[999;999H",
                    b"\x1b]52;c;cHduZWQ=\x07", b"\x1b]0;T\x07", b"\x1b[?2004h", b"\xf0\x9f", b"x" * 20])
        for _ in range(20_000)
    )  # fmt: skip
    # (No DSR queries in the hostile part: thousands of cursor reports typed back into bash
    # would scroll the marker away; the random part still has some.)
    (tmp_path / "blob").write_bytes(blob + hostile)
    sid = wb.new(repo, "--sandbox", "off", "--size", "80x24")
    wb.wait_state(sid, "running")
    with Client("fuzz") as c:
        # CAN and ST end whatever string the random bytes left open (as a real terminal would
        # need too), then RIS; `data` is typed raw.
        reset = "printf '\\030\\033\\\\\\033c'"
        c.call("keys", id=sid, data=f"cat {tmp_path / 'blob'}; {reset}; echo; echo done-$((1+1))\r")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            scr = c.call("screen", id=sid)
            if any("done-2" in ln for ln in scr["lines"]):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the shell never printed done-2 after the random output")
        assert scr["size"] == [80, 24] and len(scr["lines"]) == 24
        x, y, _vis = scr["cursor"]
        assert 0 <= x < 80 and 0 <= y < 24
        assert one_line(scr["title"]) == scr["title"]  # the title is inert text
        frame = c.call("frame", id=sid)
        assert frame["full"] is True and len(frame["rows"]) == 24
        sb = c.call("scrollback", id=sid, start=0, count=1000)
        assert sb["total"] >= 0 and len(sb["rows"]) <= 1000
        assert c.call("get", id=sid)["state"] == "running"


# The fast codec (`_json` called directly, so the CLI need not import json) against json.
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_frame_codec_writes_and_reads_what_json_does(value: Any) -> None:
    from workbench.daemon import protocol

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    assert protocol.dumps(value) == text
    got, want = protocol.loads(text.encode()), json.loads(text)
    assert json.dumps(got) == json.dumps(want)  # NaN != NaN: compare the encodings


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), _JSONISH, _VALUES.map(lambda v: (" " + json.dumps(v) + "\n ").encode())))
def test_frame_codec_reads_any_bytes_as_json_loads_does(data: bytes) -> None:
    _same_as_json_loads(data)


def _same_as_json_loads(data: bytes) -> None:
    from workbench.daemon import protocol

    try:
        want: Any = ("ok", json.dumps(json.loads(data)))
    except (ValueError, RecursionError) as e:
        want = ("error", type(e), str(e))
    try:
        got: Any = ("ok", json.dumps(protocol.loads(data)))
    except (ValueError, RecursionError) as e:
        got = ("error", type(e), str(e))
    assert got == want


def test_frame_codec_edge_cases() -> None:
    from workbench.daemon import protocol

    for data in (b"\xef\xbb\xbf{}", b"NaN", b"[Infinity,-Infinity]", b"{} x", b"  ", b'"\\ud800"'):
        _same_as_json_loads(data)
    with pytest.raises(TypeError, match="not JSON serializable"):
        protocol.dumps({"a": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        protocol.dumps(loop)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_ESCAPEY, st.text(max_size=300)))
def test_strip_escapes_shortcut_agrees_with_the_patterns(text: str) -> None:
    from workbench.core import escapes

    esc, ctl = escapes._patterns()
    full = ctl.sub("", esc.sub("", text).replace("\r\n", "\n")).replace("\r", "")
    flat = ctl.sub("", esc.sub("", text).replace("\n", " ").replace("\r", ""))
    assert strip_escapes(text) == full
    assert strip_escapes(text, keep_newlines=False) == flat
