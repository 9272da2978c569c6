"""Themes as TOML files -> Textual themes carrying workbench's own colour variables.

Search order (later wins on a name clash): the shipped `themes/` directory, then the
user's `~/.config/workbench/themes/`. A bad file is skipped with a notice.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

import workbench
from workbench import paths
from workbench.core.escapes import one_line

DEFAULT_THEME = "workbench-dark"

# Variables every workbench theme provides (TCSS `$wb-running`, Content `[$wb-running]`).
APP_VARIABLES: dict[str, str] = {
    "wb-starting": "#8a8f98",
    "wb-running": "#4fb3ff",
    "wb-waiting": "#ffb020",
    "wb-review": "#7bd88f",
    "wb-error": "#ff5c57",
    "wb-stopped": "#6b7080",
    "wb-attention": "#ffb020",
    "wb-diff-added": "#7bd88f",
    "wb-diff-removed": "#ff5c57",
    "wb-diff-hunk": "#b48ead",
}
_COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
               "background", "surface", "panel", "boost")


class ThemeFileError(Exception):
    pass


def _check_color(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{where}: {key} must be a colour string such as \"#1e1e2e\"")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{where}: {key} = {one_line(value, 40)!r} is not a colour") from None
    return value


def parse_theme(data: dict[str, Any], where: str) -> Theme:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{where}: missing `name`")
    colors = data.get("colors", {})
    variables = data.get("variables", {})
    if not isinstance(colors, dict) or not isinstance(variables, dict):
        raise ThemeFileError(f"{where}: [colors] and [variables] must be tables")
    unknown = sorted(set(colors) - set(_COLOR_KEYS))
    if unknown:
        raise ThemeFileError(f"{where}: unknown colour {unknown[0]!r} (known: {', '.join(_COLOR_KEYS)})")
    if "primary" not in colors:
        raise ThemeFileError(f"{where}: [colors] needs at least `primary`")
    kwargs: dict[str, Any] = {k: _check_color(where, f"colors.{k}", v) for k, v in colors.items()}
    merged = dict(APP_VARIABLES)
    for k, v in variables.items():
        merged[str(k)] = _check_color(where, f"variables.{k}", v) if str(k) in APP_VARIABLES else str(v)
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{where}: `dark` must be true or false")
    return Theme(name=name.strip(), dark=dark, variables=merged, **kwargs)


def load_theme_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ThemeFileError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ThemeFileError(f"{path}: invalid TOML: {e}") from None
    return parse_theme(data, str(path))


def shipped_dirs() -> list[Path]:
    """The repo's top-level `themes/` in a checkout, else the copy packaged as workbench/themes."""
    out: list[Path] = []
    checkout = Path(workbench.__file__).resolve().parents[2] / "themes"
    if checkout.is_dir():
        out.append(checkout)
    else:
        try:
            res = importlib.resources.files("workbench") / "themes"
            if res.is_dir():
                out.append(Path(str(res)))
        except (ModuleNotFoundError, OSError):
            pass
    return out


def load_themes(dirs: list[Path] | None = None) -> tuple[dict[str, Theme], list[str]]:
    """All themes found, by name, and one notice per file that could not be used."""
    if dirs is None:
        dirs = [*shipped_dirs(), paths.user_themes_dir()]
    themes: dict[str, Theme] = {}
    notices: list[str] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as e:
                notices.append(f"theme skipped: {e}")
                continue
            themes[theme.name] = theme
    if DEFAULT_THEME not in themes:
        themes[DEFAULT_THEME] = fallback_theme()
    return themes, notices


def fallback_theme() -> Theme:
    """Used when the shipped files are missing, so the UI always has its variables."""
    return Theme(name=DEFAULT_THEME, primary="#4fb3ff", secondary="#b48ead", accent="#ffb020",
                 warning="#ffb020", error="#ff5c57", success="#7bd88f", foreground="#d8dee9",
                 background="#16181d", surface="#1e2128", panel="#262a33", dark=True,
                 variables=dict(APP_VARIABLES))
