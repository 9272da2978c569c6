"""The UI layout that survives quitting: grid, focus, open panes, views. Stored in ui.json."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench import paths

VIEWS = ("terminal", "transcript", "diff", "split")
MAX_PANES = 6


@dataclass
class LayoutState:
    grid: bool = False
    focus: str | None = None
    panes: list[str] = field(default_factory=list)  # pinned sessions shown in the grid
    views: dict[str, str] = field(default_factory=dict)  # session id -> view
    weights: dict[str, int] = field(default_factory=dict)  # session id -> pane size weight
    zoomed: bool = False
    sidebar: bool = True
    theme: str | None = None
    # the new-session dialog's last agent choice (agent, provider, model): ctrl+n, prompt, enter
    last_new: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayoutState:
        st = cls()
        if isinstance(d.get("grid"), bool):
            st.grid = d["grid"]
        if isinstance(d.get("focus"), str):
            st.focus = d["focus"]
        if isinstance(d.get("panes"), list):
            st.panes = [p for p in d["panes"] if isinstance(p, str)][:MAX_PANES]
        if isinstance(d.get("views"), dict):
            st.views = {k: v for k, v in d["views"].items() if isinstance(k, str) and v in VIEWS}
        if isinstance(d.get("weights"), dict):
            st.weights = {k: max(1, min(5, v)) for k, v in d["weights"].items()
                          if isinstance(k, str) and isinstance(v, int)}
        for flag in ("zoomed", "sidebar"):
            if isinstance(d.get(flag), bool):
                setattr(st, flag, d[flag])
        if isinstance(d.get("theme"), str):
            st.theme = d["theme"]
        if isinstance(d.get("last_new"), dict):
            st.last_new = {k: v for k, v in d["last_new"].items()
                           if k in ("agent", "provider", "model") and isinstance(v, str)}
        return st

    def prune(self, live: set[str]) -> None:
        """Forget sessions that no longer exist."""
        self.panes = [p for p in self.panes if p in live]
        self.views = {k: v for k, v in self.views.items() if k in live}
        self.weights = {k: v for k, v in self.weights.items() if k in live}
        if self.focus not in live:
            self.focus = None


def state_file() -> Path:
    return paths.state_dir() / "ui.json"


def load(path: Path | None = None) -> LayoutState:
    path = path or state_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LayoutState()
    return LayoutState.from_dict(data) if isinstance(data, dict) else LayoutState()


def save(state: LayoutState, path: Path | None = None) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a file."""
    path = path or state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ui-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(state), f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
