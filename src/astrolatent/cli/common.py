"""Helpers shared by the CLI modules: JSON output and consoles."""

from __future__ import annotations

import json

import typer
from rich.console import Console

console = Console(soft_wrap=True)


def echo_json(payload: object) -> None:
    """Print machine-readable output on stdout (no rich markup)."""
    typer.echo(json.dumps(payload, indent=2, default=str))


def parse_columns(value: str | None) -> list[str]:
    """Split a comma-separated option (``"a,b , c"`` -> ``["a", "b", "c"]``)."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]
