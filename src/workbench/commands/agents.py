"""CLI commands: agents. Registered on the main group by `register`."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    pass
