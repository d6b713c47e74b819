"""``tuneback relay``: publish every committed event to NATS JetStream; options to reach it."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer
from pydantic import ValidationError

from tuneback.cli.app import DatabaseOption, app, err, open_store, settings_with
from tuneback.errors import ConfigurationError
from tuneback.stream.subjects import StreamTarget, require_nats

NatsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        envvar="TUNEBACK_NATS_URL",
        show_envvar=True,
        help="NATS server with JetStream, e.g. nats://127.0.0.1:4222.",
    ),
]
StreamOption = Annotated[
    str | None,
    typer.Option(
        "--stream",
        envvar="TUNEBACK_NATS_STREAM",
        show_envvar=True,
        help="JetStream stream name (default TUNEBACK).",
    ),
]
SubjectOption = Annotated[
    str | None,
    typer.Option(
        "--subject",
        envvar="TUNEBACK_NATS_SUBJECT",
        show_envvar=True,
        help="First token of the subjects: <subject>.<project>.<event type> (default tuneback).",
    ),
]


def stream_target(url: str | None, stream: str | None, subject: str | None) -> StreamTarget:
    """Where the stream is, from the options given and the TUNEBACK_NATS_* settings."""
    require_nats()
    try:
        settings = settings_with(nats_url=url, nats_stream=stream, nats_subject=subject)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = "TUNEBACK_" + str(problem["loc"][0]).upper() if problem["loc"] else "a setting"
        raise ConfigurationError(
            f"{where}: {problem['msg'].removeprefix('Value error, ')}"
        ) from None
    return StreamTarget.from_settings(settings)


@app.command()
def relay(
    nats_url: NatsUrlOption = None,
    stream: StreamOption = None,
    subject: SubjectOption = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Publish what is committed now, then stop (for cron, tests)."),
    ] = False,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Events published per round trip.")
    ] = 500,
    interval: Annotated[
        float, typer.Option(min=0.005, help="Seconds between polls of an idle log.")
    ] = 0.02,
    database_url: DatabaseOption = None,
) -> None:
    """Publish every committed event to NATS JetStream, in order, and keep following the log.

    Each event goes to <subject>.<project>.<event type> (events of no one project
    under _system) with its id as Nats-Msg-Id, so JetStream drops repeats. The
    relay stores how far JetStream acknowledged and resumes there after a crash
    or a restart; while NATS is down it waits and retries. The stream is
    created if missing (file storage, 30 days max age, 10 minutes duplicate
    window). `tuneback serve` runs the relay itself when TUNEBACK_NATS_URL is
    set; only one relay per stream runs at a time (a second one waits).

    \b
      tuneback relay --nats-url nats://127.0.0.1:4222
      TUNEBACK_NATS_URL=nats://127.0.0.1:4222 tuneback relay --once
      nats stream info TUNEBACK          # what the stream holds (NATS CLI)
      tuneback db info                   # how far the relay is behind
    """
    target = stream_target(nats_url, stream, subject)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    stream_log = logging.getLogger("tuneback.stream")
    stream_log.addHandler(handler)
    stream_log.setLevel(logging.INFO)
    from tuneback.stream import lease_and_relay

    with open_store(database_url) as store:
        err.print(
            f"relaying {store.display_url} to {target.url}, stream {target.stream} "
            f"({target.subjects}); Ctrl+C stops",
            markup=False,
        )

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)

            told = False

            def waiting(held: bool) -> None:
                nonlocal told
                if not held and not told:
                    err.print("another relay holds this stream; waiting to take over")
                told = not held

            stats = await lease_and_relay(
                store,
                target,
                stop,
                once=once,
                batch=batch,
                interval=interval,
                on_lease=waiting,
            )
            err.print(
                f"published {stats.published} events ({stats.duplicates} repeats dropped "
                f"by JetStream); position {store.relay_position(target.relay_name)}",
                markup=False,
            )

        asyncio.run(run())
