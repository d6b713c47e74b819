"""Fixtures for the stream tests: a real NATS server with JetStream, a stream of our own per test.

NATS is ``TUNEBACK_TEST_NATS`` (default ``nats://127.0.0.1:4222``); the tests skip
with the reason when it is not reachable or ``nats-py`` is missing. Each test gets
a stream name and subject prefix nobody else uses (parallel test workers share
the server), and its stream is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import _postgres_schema_url
from tuneback.stream import StreamTarget

NATS_URL = os.environ.get("TUNEBACK_TEST_NATS", "nats://127.0.0.1:4222")


def nats_reachable() -> str | None:
    """None if NATS answers, else why not."""
    try:
        import nats  # noqa: F401
    except ImportError:
        return "nats-py is not installed (pip install 'tuneback[nats]')"
    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2):
            return None
    except OSError as exc:
        return f"NATS is not reachable at {NATS_URL}: {exc}"


async def delete_stream(target: StreamTarget) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(target.url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        with suppress(NotFoundError):
            await nc.jetstream().delete_stream(target.stream)
    finally:
        await nc.close()


async def stream_messages(target: StreamTarget) -> list[tuple[int, str, str]]:
    """Every message the stream holds: (stream sequence, Nats-Msg-Id, subject)."""
    import nats

    nc = await nats.connect(target.url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=10)
        info = await js.stream_info(target.stream)
        total = info.state.messages
        found: list[tuple[int, str, str]] = []
        if not total:
            return found
        sub = await js.subscribe(
            target.subjects, stream=target.stream, ordered_consumer=True, pending_msgs_limit=100_000
        )
        try:
            while len(found) < total:
                msg = await sub.next_msg(timeout=10)
                headers = msg.headers or {}
                found.append(
                    (msg.metadata.sequence.stream, headers.get("Nats-Msg-Id", ""), msg.subject)
                )
        finally:
            await sub.unsubscribe()
        return found
    finally:
        await nc.close()


@pytest.fixture
def stream_target() -> Iterator[StreamTarget]:
    reason = nats_reachable()
    if reason is not None:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:10]
    target = StreamTarget(url=NATS_URL, stream=f"TEST_{tag}", prefix=f"t{tag}")
    try:
        yield target
    finally:
        asyncio.run(delete_stream(target))


@pytest.fixture
def second_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another empty database of the test's dialect, beside the ``store`` fixture's."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'copy.db'}"
    database: str = request.getfixturevalue("postgres_database")
    return _postgres_schema_url(database)
