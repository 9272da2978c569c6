"""Check a value received from the daemon against its protocol declaration. No tests here.

`conforms(value, tp)` returns the first mismatch as a path and a reason, or None: a missing
required key, a key the declaration does not have, or a value of the wrong kind. JSON turns
tuples into lists, so a declared tuple accepts a list of the same length. `result_type(spec)`
is the result type a method declares.
"""

from __future__ import annotations

import types
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints, is_typeddict

from workbench.protocol import agent, hosts, review, session, terminal
from workbench.protocol import suggest as suggest_
from workbench.protocol.method import Method


def result_type(spec: Method[Any, Any]) -> Any:
    # `Method[P, R]` keeps no R at runtime: read it from the constant's annotation in its module.
    for mod in (session, terminal, agent, review, suggest_, hosts):
        for name, value in vars(mod).items():
            if value is spec:
                return get_args(get_type_hints(mod)[name])[1]
    raise AssertionError(f"{spec.name} has no declared result type")


def conforms(value: Any, tp: Any, path: str = "$") -> str | None:
    origin = get_origin(tp)
    if tp is Any:
        return None
    if origin in (NotRequired, Required):
        return conforms(value, get_args(tp)[0], path)
    if origin in (Union, types.UnionType):
        reasons = [conforms(value, arm, path) for arm in get_args(tp)]
        return None if any(r is None for r in reasons) else f"{path}: {value!r:.80} matches no arm of {tp}"
    if tp is None or tp is type(None):
        return None if value is None else f"{path}: expected null, got {value!r:.80}"
    if origin is Literal:
        return None if value in get_args(tp) else f"{path}: {value!r} not one of {get_args(tp)}"
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return f"{path}: expected an object ({tp.__name__}), got {type(value).__name__}"
        hints = get_type_hints(tp)
        for key in tp.__required_keys__:
            if key not in value:
                return f"{path}: missing key {key!r} of {tp.__name__}"
        for key, v in value.items():
            if key not in hints:
                return f"{path}: key {key!r} is not declared in {tp.__name__}"
            why = conforms(v, hints[key], f"{path}.{key}")
            if why:
                return why
        return None
    if origin is list:
        if not isinstance(value, list):
            return f"{path}: expected a list, got {type(value).__name__}"
        (item,) = get_args(tp)
        for i, v in enumerate(value):
            why = conforms(v, item, f"{path}[{i}]")
            if why:
                return why
        return None
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            return f"{path}: expected {len(args)} items, got {value!r:.80}"
        for i, (v, a) in enumerate(zip(value, args, strict=True)):
            why = conforms(v, a, f"{path}[{i}]")
            if why:
                return why
        return None
    if origin is dict or tp is dict:
        args = get_args(tp)
        if not isinstance(value, dict):
            return f"{path}: expected an object, got {type(value).__name__}"
        if args:
            for k, v in value.items():
                why = conforms(v, args[1], f"{path}.{k}")
                if why:
                    return why
        return None
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return None if ok else f"{path}: expected {getattr(tp, '__name__', tp)}, got {value!r:.80}"
