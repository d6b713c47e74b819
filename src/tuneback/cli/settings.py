"""``tuneback settings``: every environment variable tuneback reads."""

from __future__ import annotations

from rich.table import Table

from tuneback.cli.app import app, out
from tuneback.config import settings_table


@app.command()
def settings() -> None:
    """List every TUNEBACK_* environment variable with its default and meaning."""
    table = Table("variable", "default", "meaning", box=None, pad_edge=False)
    for name, default, description in settings_table():
        table.add_row(name, default, description)
    out.print(table)
