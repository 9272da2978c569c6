"""Optional parts of the daemon (built-in agent, diff review, ...) register themselves here."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.daemon.server import Daemon

log = logging.getLogger(__name__)

# Each module exposes `setup(daemon)`; it may register methods and launchers.
EXTENSIONS: list[str] = ["workbench.daemon.agent_ext", "workbench.daemon.profiles_ext", "workbench.daemon.review_ext"]


def load_extensions(daemon: Daemon) -> None:
    for name in EXTENSIONS:
        mod = importlib.import_module(name)
        mod.setup(daemon)
