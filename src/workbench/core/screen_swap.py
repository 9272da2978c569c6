"""Give back the memory a quiet screen's emulator grew: rebuild its terminal from a snapshot.

libghostty keeps the pages a terminal grew while output streamed, even once ED 3 has erased
the history they held (`ghostty_terminal_compress` returns none of it): ~0.5 MB a 120x40
screen that printed 20,000 lines, for the life of the session. A terminal decoded from a
snapshot of the same state (~1.5 KB for such a screen) holds only the pages it needs now.

`rebuild` runs when the history has just moved to the cold store (`compact_history`, which
the daemon calls after 2 s without output), under the screen's lock, which `feed` holds
too. The old terminal is kept unless the parser is between sequences and the new terminal
reads the same in everything the daemon reads (`observe`) and snapshots to the same bytes.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pyghostty import ffi, lib

from workbench.core import screen_native as native
from workbench.core.sgr import Row
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


class TerminalScreen(Protocol):
    """What this module uses of `screen.TerminalScreen` (which imports this module)."""

    _term: Any
    _handle: Any
    _limits: tuple[int, int]
    _owned: list[Any]
    _state: Any
    _rows_it_p: Any
    _rows_it: Any
    _state_read: bool  # a read has filled the render state since it was made
    _out: Any  # the formatter's output buffer

    @property
    def closed(self) -> bool: ...
    @property
    def size(self) -> tuple[int, int]: ...
    @property
    def cursor(self) -> object: ...
    @property
    def title(self) -> str: ...
    def mode(self, number: int, *, ansi: bool = False) -> bool: ...
    def cell_rows(self) -> list[Row]: ...
    def _hot_len(self) -> int: ...
    def _hot_rows(self, start: int, end: int) -> list[Row]: ...
    def _format(self, tag: int, first: int, last: int) -> list[Row] | None: ...
    def _mark_all_dirty(self) -> None: ...

# Every mode libghostty knows (it rejects the others), DEC private and ANSI.
DEC_MODES = (
    1, 3, 4, 5, 6, 7, 8, 9, 12, 25, 40, 45, 47, 66, 67, 69, 1000, 1002, 1003, 1004, 1005,
    1006, 1007, 1015, 1016, 1035, 1036, 1039, 1045, 1047, 1048, 1049, 2004, 2026, 2027, 2031,
    2033, 2048, 5522,
)
ANSI_MODES = (2, 4, 12, 20)

# Plain-valued terminal data (numbers, flags, colours, the palette), compared as bytes.
_DATA = tuple(
    getattr(lib, "GHOSTTY_TERMINAL_DATA_" + name)
    for name in (
        "COLS", "ROWS", "CURSOR_X", "CURSOR_Y", "CURSOR_PENDING_WRAP", "ACTIVE_SCREEN",
        "CURSOR_VISIBLE", "KITTY_KEYBOARD_FLAGS", "SCROLLBAR", "CURSOR_STYLE",
        "MOUSE_TRACKING", "TOTAL_ROWS", "SCROLLBACK_ROWS", "WIDTH_PX", "HEIGHT_PX",
        "COLOR_FOREGROUND", "COLOR_BACKGROUND", "COLOR_CURSOR", "COLOR_PALETTE",
        "COLOR_FOREGROUND_DEFAULT", "COLOR_BACKGROUND_DEFAULT", "COLOR_CURSOR_DEFAULT",
        "COLOR_PALETTE_DEFAULT", "SCROLLBACK_MAX_BYTES", "SCROLLBACK_MAX_LINES",
        "CONTINUATION_MAX_BYTES", "VIEWPORT_ACTIVE", "VT_GROUND", "CURSOR_AT_PROMPT",
        "CLIPBOARD_WRITE_MAX_BYTES", "MOUSE_SHAPE", "KITTY_IMAGE_STORAGE_LIMIT",
    )
)
OUT_START_BYTES = 8 * 1024  # the formatter's buffer as made; a quiet screen's goes back to it
_DATA_BYTES = 1024  # more than the largest of them, the palette (256 RGB triples)


def _data(term: Any, key: int) -> tuple[int, bytes]:
    out = ffi.new("uint8_t[]", _DATA_BYTES)
    return int(lib.ghostty_terminal_get(term, key, out)), bytes(out)


def observe(scr: TerminalScreen) -> tuple[object, ...]:
    """What the daemon can read of the screen's current terminal, and then some."""
    term = scr._term
    nrows = scr.size[1]
    hot = scr._hot_len()
    return (
        scr._format(lib.GHOSTTY_POINT_TAG_ACTIVE, 0, nrows - 1),  # the fast read path
        scr.cell_rows(),  # the slow one, which it falls back to
        scr._hot_rows(0, hot) if hot else [],
        scr.cursor,
        scr.title,
        native.terminal_string(term, lib.GHOSTTY_TERMINAL_DATA_PWD),
        [scr.mode(n) for n in DEC_MODES],
        [scr.mode(n, ansi=True) for n in ANSI_MODES],
        [_data(term, key) for key in _DATA],
    )


def encode(term: Any) -> bytes | None:
    p, n = ffi.new("uint8_t**"), ffi.new("size_t*")
    if lib.ghostty_snapshot_encode_alloc(term, ffi.NULL, p, n) != 0:
        return None
    try:
        return bytes(ffi.buffer(p[0], n[0]))
    finally:
        lib.ghostty_free(ffi.NULL, p[0], n[0])


def decode(data: bytes) -> Any | None:
    """A new terminal from a snapshot (without options or callbacks), or None."""
    dec = ffi.new("GhosttySnapshotDecoder*")
    if lib.ghostty_snapshot_decoder_new_buf(ffi.NULL, dec, data, len(data)) != 0:
        return None
    try:
        term = ffi.new("GhosttyTerminal*")
        if lib.ghostty_snapshot_decoder_decode(dec[0], term) != 0:
            return None
        return term[0]
    finally:
        lib.ghostty_snapshot_decoder_free(dec[0])


def at_ground(term: Any) -> bool:
    """Whether the parser is between sequences and characters (not inside an escape
    sequence or a UTF-8 character): only then does a snapshot hold all of its state."""
    out = ffi.new("bool*")
    return lib.ghostty_terminal_get(term, lib.GHOSTTY_TERMINAL_DATA_VT_GROUND, out) == 0 and bool(out[0])


def rebuild(scr: TerminalScreen) -> bool:
    """Replace the screen's terminal with one decoded from its snapshot; whether it was.

    Call with the screen's lock held. Keeps the old terminal when the parser is mid-sequence
    or the new one differs in any way looked at.
    """
    old = scr._term
    if scr.closed or not at_ground(old):
        return False
    data = encode(old)
    new = decode(data) if data is not None else None
    if data is None or new is None:
        log.debug("terminal snapshot round trip failed; keeping the terminal")
        return False
    try:
        native.setup_terminal(new, scr._handle, *scr._limits)
        before = observe(scr)
        scr._term = new
        after = observe(scr)
        same = before == after and encode(new) == data
    except WorkbenchError:
        same = False
    if not same:
        scr._term = old
        lib.ghostty_terminal_free(new)
        log.debug("terminal rebuilt from its snapshot reads differently; keeping the old one")
        return False
    _commit(scr, new)
    return True


def _new_render_state() -> tuple[Any, Any] | None:
    """An empty render state and its row iterator (the pointer that holds it); None, with
    nothing left allocated, when libghostty is out of memory."""
    state = ffi.new("GhosttyRenderState*")
    rows_it = ffi.new("GhosttyRenderStateRowIterator*")
    if (lib.ghostty_render_state_new(ffi.NULL, state) == 0
            and lib.ghostty_render_state_row_iterator_new(ffi.NULL, rows_it) == 0):
        return state[0], rows_it
    native.free_native([ffi.NULL, state[0], rows_it[0]])
    return None


def _commit(scr: TerminalScreen, new: Any) -> None:
    """Make `new` the screen's terminal and free the old one, with its render state: that
    last read pages of the old terminal. A new render state reads every row once; they
    match the row cache, so no row is reported as changed."""
    fresh = _new_render_state()
    old = list(scr._owned)
    if fresh is not None:
        state, rows_it = fresh
        scr._owned[:] = [new, state, rows_it[0]]
        scr._state, scr._rows_it_p, scr._rows_it = state, rows_it, rows_it[0]
        scr._state_read = False
    else:  # out of memory: keep the render state, told to reread every row
        scr._owned[0] = new
        old[1:] = [ffi.NULL, ffi.NULL]
        scr._mark_all_dirty()
    native.free_native(old)


def release_render_state(scr: TerminalScreen) -> bool:
    """Free the render state a read filled (a copy of every cell on the screen: ~200-400 KB
    at 120x40, for 30 read screens 6-12 MB of a 62 MB daemon) for an empty one, which the
    next read fills again; the row cache keeps that read from reporting any row changed.
    False when there was nothing to free (not read since) or no memory for a new one."""
    if not scr._state_read:
        return False
    fresh = _new_render_state()
    if fresh is None:
        return False
    state, rows_it = fresh
    old = [ffi.NULL, scr._state, scr._rows_it]
    scr._owned[1:] = [state, rows_it[0]]
    scr._state, scr._rows_it_p, scr._rows_it = state, rows_it, rows_it[0]
    scr._state_read = False
    native.free_native(old)
    if len(scr._out) > OUT_START_BYTES:  # grown by reads of long rows (up to 64 KB a screen)
        scr._out = ffi.new("uint8_t[]", OUT_START_BYTES)
    return True
