"""The typed protocol: every declared method is served, parameters are checked at the
boundary with errors that name them, and handlers cannot drift from their declaration."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from tests.wb import Wb
from workbench.daemon import hosts, methods
from workbench.daemon.api import Router, method
from workbench.daemon.client import Client
from workbench.daemon.extensions import EXTENSIONS
from workbench.errors import UsageError
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.catalog import METHODS
from workbench.protocol.validate import ParamError


def _daemon_router() -> Router:
    router = Router()
    router.add_module(methods)
    router.add_module(hosts)  # the server adds it, as it adds `methods`
    for name in EXTENSIONS:
        router.add_module(importlib.import_module(name))
    return router


def test_the_daemon_serves_exactly_the_declared_methods() -> None:
    assert sorted(_daemon_router().routes) == sorted(METHODS)


def test_a_handler_whose_params_type_differs_from_its_declaration_is_refused() -> None:
    @method(pt.KEYS)
    async def wrong(d: Any, c: Any, p: ps.IdParams) -> Any:  # not KeysParams
        return {}

    with pytest.raises(TypeError, match="KeysParams"):
        Router().add(wrong)


def test_a_method_missing_from_the_protocol_cannot_be_registered() -> None:
    from workbench.protocol.method import Method

    @method(Method("undeclared", ps.IdParams))
    async def h(d: Any, c: Any, p: ps.IdParams) -> Any:
        return {}

    with pytest.raises(TypeError, match="not declared"):
        Router().add(h)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "missing parameter 'id'"),
        ({"id": 3}, "parameter 'id' must be str"),
        ({"id": "a\0b"}, "parameter 'id' contains a NUL byte"),
        ({"id": "x", "colour": "red"}, "unknown parameter 'colour'"),
    ],
)
def test_bad_parameters_name_the_parameter(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        ps.GET.validate(raw)


def test_types_are_checked_per_annotation() -> None:
    assert pt.SCROLLBACK.validate({"id": "a", "start": 5, "count": None}) == {"id": "a", "start": 5}
    for bad, msg in [
        ({"id": "a", "start": True}, "'start' must be int"),
        ({"id": "a", "start": 2**70}, "'start' is out of range"),
        ({"id": "a", "start": 1.5}, "'start' must be int"),
    ]:
        with pytest.raises(ParamError, match=msg):
            pt.SCROLLBACK.validate(bad)
    with pytest.raises(ParamError, match="'ids' must be a list of strings"):
        pt.SUBSCRIBE.validate({"ids": ["a", 1]})
    with pytest.raises(ParamError, match="'all' must be bool"):
        pt.SUBSCRIBE.validate({"all": "yes"})
    from workbench.protocol import review as pr

    with pytest.raises(ParamError, match="'format' must be one of json, unified"):
        pr.DIFF.validate({"id": "a", "format": "html"})
    with pytest.raises(ParamError, match="params must be an object") as info:
        pt.KEYS.validate([1, 2])
    assert info.value.protocol


def test_the_daemon_answers_a_bad_parameter_with_a_usage_error_naming_it(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--name", "typed")
    with Client() as c:
        with pytest.raises(UsageError, match="resize: parameter 'size' must be str"):
            c.call("resize", id=sid, size=80)
        with pytest.raises(UsageError, match="unknown parameter 'colour'"):
            c.call("get", id=sid, colour="red")
        # The connection still serves typed requests after the refusals.
        info = c.request(ps.GET, ps.IdParams(id=sid))
        assert info["name"] == "typed"
        assert c.request(pt.RESIZE, pt.ResizeParams(id=sid, size="90x30")) == {"cols": 90, "rows": 30}


def test_a_declaration_with_postponed_annotations_is_refused() -> None:
    """Python 3.11 would count its NotRequired keys as required: refuse it at import."""
    # This module's annotations are postponed, so a class statement here has string ones.
    from typing import NotRequired, TypedDict

    from workbench.protocol.validate import compile_checker

    class Late(TypedDict):
        id: str
        n: NotRequired[int]

    with pytest.raises(TypeError, match="without `from __future__ import annotations`"):
        compile_checker(Late)


def test_an_unknown_parameter_is_named_inertly() -> None:
    """The name comes from the client: quotes and control characters are shown escaped."""
    for key, shown in [("'", "unknown parameter '''"), ("\x1b[2J", "unknown parameter '\\x1b[2J'")]:
        with pytest.raises(ParamError) as info:
            ps.GET.validate({"id": "a", key: 1})
        assert str(info.value) == shown
