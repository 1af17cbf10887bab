"""What commands print: progress on stderr (silenced by ``-q``), reports on stdout."""

from __future__ import annotations

from pathlib import Path

import click

#: ``ctx.meta`` key set by ``aeroloc -q``.
QUIET_KEY = "aeroloc.quiet"


def say(message: str) -> None:
    """A one-line progress message on stderr, unless ``aeroloc -q`` was given."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(QUIET_KEY, False):
        return
    click.echo(message, err=True)


def report(title: str, paths: dict[str, Path]) -> None:
    """``title`` and the files written, one ``label path`` line each, on stdout."""
    click.echo(title)
    for label, path in paths.items():
        click.echo(f"  {label:<18} {path}")
