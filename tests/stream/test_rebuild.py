"""A store rebuilt from the stream equals the store the stream came from, table by table."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.factories import conversation_events
from tests.storage.snapshot import projection_snapshot
from tests.stream.test_relay import relay_once
from tuneback.cli import app
from tuneback.domain import AuditRecorded
from tuneback.errors import ValidationError
from tuneback.storage import Store
from tuneback.storage import tables as t
from tuneback.stream import StreamTarget
from tuneback.stream.reader import copy_stream_into

runner = CliRunner()


def log_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.events).order_by(t.events.c.seq)).mappings()
        return [dict(row) for row in rows]


def mixed_load(store: Store) -> None:
    for n in range(8):
        store.append_many(conversation_events(n, project=f"p{n % 3}", user=f"u{n % 4}"))
    store.append(AuditRecorded(action="export", actor="cli", target="out/"))
    store.forget_user("u1")


def test_rebuilt_store_equals_the_source(
    store: Store, stream_target: StreamTarget, second_url: str
) -> None:
    mixed_load(store)
    relay_once(store, stream_target, batch=37)
    args = ["--stream", stream_target.stream, "--subject", stream_target.prefix, "-d", second_url]
    result = runner.invoke(app, ["db", "rebuild", "--from", stream_target.url, *args])
    assert result.exit_code == 0, result.output
    copied = store.last_seq()
    assert result.output.splitlines()[-1] == (
        f"copied {copied} events from stream {stream_target.stream} and rebuilt the projections"
    )
    with Store(second_url) as copy:
        assert log_rows(copy) == log_rows(store)
        assert projection_snapshot(copy) == projection_snapshot(store)
        assert copy.info()["rows"] == store.info()["rows"]


def test_rebuild_refuses_a_database_that_holds_events(
    store: Store, stream_target: StreamTarget, second_url: str
) -> None:
    store.append_many(conversation_events(0))
    relay_once(store, stream_target)
    with Store(second_url) as copy:
        copy.append_many(conversation_events(1))
        with pytest.raises(ValidationError, match="already holds events"):
            asyncio.run(copy_stream_into(copy, stream_target))


def test_events_from_the_stream_print_what_the_database_prints(
    store: Store, stream_target: StreamTarget, database_url: str
) -> None:
    store.append_many(conversation_events(0) + conversation_events(1, project="other"))
    relay_once(store, stream_target)
    common = ["--stream", stream_target.stream, "--subject", stream_target.prefix]
    for options in (["--after", "3"], ["--project", "other", "--limit", "4"], ["-t", "run.failed"]):
        from_db = runner.invoke(app, ["events", *options, "-d", database_url])
        from_stream = runner.invoke(app, ["events", "--from", stream_target.url, *common, *options])
        assert from_stream.exit_code == 0, from_stream.output
        assert from_stream.output == from_db.output
        assert all(json.loads(line) for line in from_stream.output.splitlines())


def test_relay_command_and_db_info_show_the_lag(
    store: Store, stream_target: StreamTarget, database_url: str
) -> None:
    store.append_many(conversation_events(0))
    common = ["--nats-url", stream_target.url, "--stream", stream_target.stream]
    result = runner.invoke(
        app, ["relay", "--once", *common, "--subject", stream_target.prefix, "-d", database_url]
    )
    assert result.exit_code == 0, result.output
    per = len(conversation_events(0))
    assert (
        f"published {per} events (0 repeats dropped by JetStream); position {per}" in result.output
    )
    store.append_many(conversation_events(1))
    info = runner.invoke(app, ["db", "info", "-d", database_url])
    relay_line = next(line for line in info.output.splitlines() if line.startswith("relay"))
    assert relay_line.startswith(
        f"relay     nats:{stream_target.stream} at seq {per}, {per} behind, the oldest committed "
    )
    assert store.info()["relays"][0]["waiting_since"] == store.events_after(per, 1)[0].recorded_at


@pytest.mark.slow
def test_a_16k_event_mixed_load_rebuilt_from_the_stream_equals_the_source(
    store: Store, stream_target: StreamTarget, second_url: str
) -> None:
    for start in range(0, 640, 32):
        store.append_many(
            event
            for n in range(start, start + 32)
            for event in conversation_events(n, project=f"p{n % 5}", user=f"u{n % 7}")
        )
    store.forget_user("u3", project="p1")
    total = 640 * len(conversation_events(0))
    assert store.last_seq() == total
    relay_once(store, stream_target)
    with Store(second_url) as copy:
        assert asyncio.run(asyncio.wait_for(copy_stream_into(copy, stream_target), 60)) == total
        assert log_rows(copy) == log_rows(store)
        assert projection_snapshot(copy) == projection_snapshot(store)
