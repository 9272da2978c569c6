"""Check a request's parameters against a TypedDict, once per key, with errors that name it.

Supported annotations: str (no NUL), int (64-bit, not bool), float (finite; ints accepted),
bool, list[str], dict[str, Any], Literal[...], Any, and `X | None`. A key given as null is
treated as absent, so clients may pass optional parameters as None. `RawStr` (a str marked
`Annotated[str, RAW_BYTES]`) is the one string that may carry NUL: bytes for a terminal, where
NUL is a key (ctrl+space); names, ids and paths stay plain str and refuse it.
"""

import math
import types
from collections.abc import Callable
from typing import (
    Annotated,
    Any,
    ForwardRef,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

INT_LIMIT = 2**63

Checker = Callable[[Any], Any]
_ValueCheck = Callable[[str, Any], Any]


class _RawBytes:
    """The marker of `RawStr`: terminal input, where NUL is an ordinary key."""

    def __repr__(self) -> str:
        return "RAW_BYTES"


RAW_BYTES = _RawBytes()
RawStr = Annotated[str, RAW_BYTES]


class ParamError(ValueError):
    """A parameter is missing, unknown or of the wrong type; `protocol` when the params are
    not an object at all (the daemon maps the rest to a `usage` error)."""

    def __init__(self, message: str, *, protocol: bool = False) -> None:
        super().__init__(message)
        self.protocol = protocol


def compile_checker(td: type) -> Checker:
    """A function that validates a raw params object against TypedDict `td`."""
    if any(isinstance(a, str | ForwardRef) for a in td.__annotations__.values()):
        # With postponed annotations Python 3.11 counts NotRequired keys as required.
        raise TypeError(f"{td.__name__}: declare protocol types without `from __future__ import annotations`")
    hints = get_type_hints(td, include_extras=True)  # extras: the RAW_BYTES marker
    required: frozenset[str] = getattr(td, "__required_keys__", frozenset())
    checks = {key: _value_check(ann) for key, ann in hints.items()}

    def check(raw: Any) -> dict[str, Any]:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ParamError("params must be an object", protocol=True)
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if value is None:
                continue
            fn = checks.get(key)
            if fn is None:
                # repr() escapes control characters: a key is shown, never interpreted.
                raise ParamError(f"unknown parameter '{repr(str(key)[:40])[1:-1]}'")
            out[key] = fn(key, value)
        for key in required:
            if key not in out:
                raise ParamError(f"missing parameter '{key}'")
        return out

    return check


def _value_check(ann: Any) -> _ValueCheck:
    origin = get_origin(ann)
    if origin in (NotRequired, Required):
        return _value_check(get_args(ann)[0])
    if origin is Annotated:
        inner, *marks = get_args(ann)
        if inner is str and any(m is RAW_BYTES for m in marks):
            return _raw_str
        return _value_check(inner)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(ann) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {ann!r}")
        return _value_check(inner[0])
    if origin is Literal:
        allowed = get_args(ann)
        return lambda key, v: _literal(key, v, allowed)
    if origin is list:
        (item,) = get_args(ann)
        if item is not str:
            raise TypeError(f"unsupported list {ann!r}")
        return _str_list
    if origin is dict or ann is dict:
        return _object
    simple = {str: _str, int: _int, float: _float, bool: _bool}
    if ann in simple:
        return simple[ann]
    if ann is Any:
        return lambda key, v: v
    raise TypeError(f"unsupported parameter type {ann!r}")


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ParamError(f"parameter '{key}' must be str")
    if "\0" in v:
        raise ParamError(f"parameter '{key}' contains a NUL byte")
    return v


def _raw_str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ParamError(f"parameter '{key}' must be str")
    return v


def _int(key: str, v: Any) -> int:
    # bool is an int subclass: `true` is not a number here.
    if not isinstance(v, int) or isinstance(v, bool):
        raise ParamError(f"parameter '{key}' must be int")
    # SQLite and most callers take 64-bit integers; a larger one is a usage error, not a crash.
    if not -INT_LIMIT <= v < INT_LIMIT:
        raise ParamError(f"parameter '{key}' is out of range")
    return v


def _float(key: str, v: Any) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise ParamError(f"parameter '{key}' must be int/float")
    try:
        f = float(v)
    except OverflowError:
        raise ParamError(f"parameter '{key}' is out of range") from None
    if not math.isfinite(f):
        raise ParamError(f"parameter '{key}' must be a finite number")
    return f


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ParamError(f"parameter '{key}' must be bool")
    return v


def _str_list(key: str, v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and "\0" not in x for x in v):
        raise ParamError(f"parameter '{key}' must be a list of strings")
    return v


def _object(key: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ParamError(f"parameter '{key}' must be an object")
    return v


def _literal(key: str, v: Any, allowed: tuple[Any, ...]) -> Any:
    if isinstance(v, bool) or v not in allowed:
        raise ParamError(f"parameter '{key}' must be one of {', '.join(map(str, allowed))}")
    return v
