"""``tuneback db``: look after the database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from tuneback.cli.app import DatabaseOption, app, open_store, out
from tuneback.cli.relay import StreamOption, SubjectOption, stream_target
from tuneback.domain import utcnow

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
def rebuild(
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="NATS_URL",
            help="Copy the log from the NATS JetStream stream into this empty database first.",
        ),
    ] = None,
    stream: StreamOption = None,
    subject: SubjectOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Rebuild every table that pages read by replaying the event log.

    The dashboard's rollups (counts, sums and latency histograms per hour and
    day) are projections too: they are counted again as the log is replayed.

    Safe to run at any time: it happens in one transaction, so if it fails the
    old tables stay as they were.

    With --from, the log comes from the stream `tuneback relay` fills: every
    event is copied with its seq, id and time into an empty database, and the
    tables are built from it, so the copy equals the database the stream came
    from (as far as the stream reaches back: see its max age).

    \b
      tuneback db rebuild
      tuneback db rebuild --from nats://127.0.0.1:4222 -d sqlite:///copy.db
    """
    if source is not None:
        from tuneback.stream.reader import copy_stream_into

        target = stream_target(source, stream, subject)
        with open_store(database_url) as store:
            copied = asyncio.run(copy_stream_into(store, target))
        out.print(f"copied {copied} events from stream {target.stream} and rebuilt the projections")
        return
    with open_store(database_url) as store:
        replayed = store.rebuild()
    out.print(f"rebuilt the projections from {replayed} events")


@db_app.command()
def info(database_url: DatabaseOption = None) -> None:
    """Show where the data is, its schema revision and how many rows each table holds.

    A relay to NATS (tuneback relay) shows how far it has published and how many
    events it is behind.
    """
    with open_store(database_url) as store:
        details = store.info()
    out.print(f"database  {details['url']}")
    out.print(f"dialect   {details['dialect']}")
    out.print(f"revision  {details['revision']} (newest: {details['head']})")
    out.print(f"last seq  {details['last_seq']}")
    for relay in details["relays"]:
        updated = relay["updated_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
        behind = f"{relay['behind']} behind"
        if relay["waiting_since"] is not None:
            waited = (utcnow() - relay["waiting_since"]).total_seconds()
            behind += f", the oldest committed {waited:.1f} s ago"
        out.print(
            f"relay     {relay['name']} at seq {relay['seq']}, {behind} (last published {updated})",
            markup=False,
        )
    table = Table(box=None, pad_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in details["rows"].items():
        table.add_row(name, str(count))
    out.print(table)
