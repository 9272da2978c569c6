"""Every socket method, by name: what the daemon must serve and what `docs` list."""

from typing import Any

from workbench.protocol import agent, hosts, review, session, terminal
from workbench.protocol import suggest as suggest_
from workbench.protocol.method import Method

_MODULES = (session, terminal, agent, review, suggest_, hosts)

METHODS: dict[str, Method[Any, Any]] = {
    m.name: m for mod in _MODULES for m in vars(mod).values() if isinstance(m, Method)
}
