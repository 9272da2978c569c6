"""Terminal sessions on the wire: keys in, screens and frames out."""

from typing import Any, NotRequired, TypedDict

from workbench.protocol.method import Method
from workbench.protocol.session import IdParams
from workbench.protocol.validate import RawStr

# One styled run of a row: [text, fg, bg, flags] (colours are packed ints; flags a bitset).
Run = tuple[str, int, int, int]
# A row as sent: its runs (JSON turns the tuples into lists).
Row = list[Run]
# [x, y, visible]
Cursor = tuple[int, int, bool]


class Frame(TypedDict):
    """A pushed (or fetched) screen update of one session: the rows that changed, by index
    as a string (JSON object keys), or every row when `full`."""

    session: str
    cursor: Cursor
    size: tuple[int, int]
    alt: bool
    title: str
    bracketed_paste: bool
    mouse: bool
    app_cursor: bool
    rows: dict[str, Row]
    full: bool


class KeysParams(TypedDict):
    id: str
    # Exactly one of: raw text sent as is, or text with escapes (`\\r`, `\\x1b`, ...) decoded.
    # `data` is terminal input and may hold NUL (ctrl+space); `text` writes it as `\\0`.
    data: NotRequired[RawStr]
    text: NotRequired[str]


class KeysResult(TypedDict):
    bytes: int


class ScreenParams(TypedDict):
    id: str
    ansi: NotRequired[bool]


class ScreenResult(TypedDict):
    lines: list[str]
    cursor: Cursor
    size: tuple[int, int]
    alt: bool
    title: str


class ResizeParams(TypedDict):
    id: str
    size: str  # COLSxROWS


class ResizeResult(TypedDict):
    cols: int
    rows: int


class ScrollbackParams(TypedDict):
    id: str
    start: NotRequired[int]
    count: NotRequired[int]


class ScrollbackResult(TypedDict):
    total: int
    start: int
    rows: list[Any]


class SubscribeParams(TypedDict):
    ids: NotRequired[list[str]]
    all: NotRequired[bool]
    frames: NotRequired[bool]
    # with `frames`, only these sessions' frames (replacing an earlier list): a remote
    # host's link follows every session but watches only the screens someone looks at
    frame_ids: NotRequired[list[str]]


class SubscribeResult(TypedDict):
    subscribed: list[str]
    all: bool
    frames: bool


class UnsubscribeParams(TypedDict):
    ids: NotRequired[list[str]]
    all: NotRequired[bool]


class UnsubscribeResult(TypedDict):
    subscribed: list[str]


KEYS: Method[KeysParams, KeysResult] = Method("keys", KeysParams)
SCREEN: Method[ScreenParams, ScreenResult] = Method("screen", ScreenParams)
RESIZE: Method[ResizeParams, ResizeResult] = Method("resize", ResizeParams)
FRAME: Method[IdParams, Frame] = Method("frame", IdParams)
SCROLLBACK: Method[ScrollbackParams, ScrollbackResult] = Method("scrollback", ScrollbackParams)
SUBSCRIBE: Method[SubscribeParams, SubscribeResult] = Method("subscribe", SubscribeParams)
UNSUBSCRIBE: Method[UnsubscribeParams, UnsubscribeResult] = Method("unsubscribe", UnsubscribeParams)
