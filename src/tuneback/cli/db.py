"""``tuneback db``: look after the database."""

from __future__ import annotations

import typer
from rich.table import Table

from tuneback.cli.app import DatabaseOption, app, open_store, out

db_app = typer.Typer(
    help="Look after the database: migrate it, rebuild projections, show what it holds.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command()
def upgrade(database_url: DatabaseOption = None) -> None:
    """Migrate the schema to the newest version (tuneback also does this on start)."""
    with open_store(database_url) as store:
        info = store.info()
    out.print(f"{info['url']} is at schema revision {info['revision']} (newest: {info['head']})")


@db_app.command()
def rebuild(database_url: DatabaseOption = None) -> None:
    """Rebuild every table that pages read by replaying the event log.

    Safe to run at any time: it happens in one transaction, so if it fails the
    old tables stay as they were.
    """
    with open_store(database_url) as store:
        replayed = store.rebuild()
    out.print(f"rebuilt the projections from {replayed} events")


@db_app.command()
def info(database_url: DatabaseOption = None) -> None:
    """Show where the data is, its schema revision and how many rows each table holds."""
    with open_store(database_url) as store:
        details = store.info()
    out.print(f"database  {details['url']}")
    out.print(f"dialect   {details['dialect']}")
    out.print(f"revision  {details['revision']} (newest: {details['head']})")
    out.print(f"last seq  {details['last_seq']}")
    table = Table(box=None, pad_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in details["rows"].items():
        table.add_row(name, str(count))
    out.print(table)
