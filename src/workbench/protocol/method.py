"""`Method[P, R]`: one socket method's name, its parameters' TypedDict and its result type.

The daemon registers a handler for a `Method` (its signature must take `P` and return `R`,
which mypy checks); a client's `request(METHOD, params)` is typed by the same object, so a
shape is written once, here, and never copied.
"""

from typing import Any, Generic, TypeVar

from workbench.protocol.validate import Checker, compile_checker

P = TypeVar("P")
R = TypeVar("R")


class Method(Generic[P, R]):
    """A socket method. `params` is the TypedDict class of its parameters."""

    __slots__ = ("check", "name", "params", "slow")

    def __init__(self, name: str, params: type[P], *, slow: bool = False) -> None:
        self.name = name
        self.params = params
        # Compiled once: the per-request cost is one loop over the given keys.
        self.check: Checker = compile_checker(params)
        # Slow methods (a check, a merge) run on a client connection of their own in the UI
        # so that keystrokes never wait behind them.
        self.slow = slow

    def __repr__(self) -> str:
        return f"Method({self.name!r})"

    def validate(self, raw: Any) -> P:
        """`raw` as `P`, or `ParamError` naming the first bad parameter."""
        out: P = self.check(raw)
        return out
