"""``tuneback events``: read the event log as JSON lines, and follow it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

import typer

from tuneback.cli.app import DatabaseOption, app, open_store, out
from tuneback.cli.relay import StreamOption, SubjectOption, stream_target
from tuneback.stream.subjects import StreamTarget


@app.command()
def events(
    after: Annotated[
        int, typer.Option("--after", "-a", min=0, help="Start after this sequence number.")
    ] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for new events (Ctrl+C stops).")
    ] = False,
    project: Annotated[str | None, typer.Option(help="Only this project's events.")] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only events of this type (repeatable)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls with --follow.")
    ] = 0.5,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="NATS_URL",
            help="Read the NATS JetStream stream the relay fills instead of the database.",
        ),
    ] = None,
    stream: StreamOption = None,
    subject: SubjectOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print events after a sequence number as JSON lines, oldest first.

    Each line has seq, id, type, version, project, recorded_at and payload; pass the
    last seq you saw to --after to carry on where you stopped:

        tuneback events --after 1200 --follow | jq .type

    With --from, the same lines come from the stream `tuneback relay` publishes
    to, so a consumer elsewhere needs no access to the database:

        tuneback events --from nats://127.0.0.1:4222 --after 1200 --limit 10
    """
    if source is not None:
        _events_from_stream(
            stream_target(source, stream, subject),
            after=after,
            follow=follow,
            project=project,
            types=event_type,
            limit=limit,
        )
        return
    printed = 0
    with open_store(database_url) as store:
        try:
            while True:
                page_size = 1_000 if limit is None else min(1_000, limit - printed)
                page = store.events_after(after, page_size, project=project, types=event_type)
                for event in page:
                    out.print(json.dumps(event.to_json_dict(), ensure_ascii=False), markup=False)
                    after = event.seq
                printed += len(page)
                if limit is not None and printed >= limit:
                    return
                if len(page) < page_size:
                    if not follow:
                        return
                    time.sleep(interval)
        except KeyboardInterrupt:
            return


def _events_from_stream(
    target: StreamTarget,
    *,
    after: int,
    follow: bool,
    project: str | None,
    types: list[str] | None,
    limit: int | None,
) -> None:
    from tuneback.stream.reader import read_stream

    async def run() -> None:
        printed = 0
        async for event in read_stream(target, after=after, follow=follow):
            if project is not None and event.project != project:
                continue
            if types and event.type not in types:
                continue
            out.print(json.dumps(event.to_json_dict(), ensure_ascii=False), markup=False)
            printed += 1
            if limit is not None and printed >= limit:
                return

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return
