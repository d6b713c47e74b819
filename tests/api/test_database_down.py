"""A database that goes away: every endpoint answers 503 in the one error shape, then recovers.

PostgreSQL is reached through a TCP relay the test controls, so "the database
went away" cuts only this test's connections (other tests share the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.api.conftest import BASE, make_app, run_body
from tuneback.storage import Store


class Relay:
    """Forwards a local port to PostgreSQL; ``cut()`` drops every connection and refuses more."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server: asyncio.base_events.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.pipes):
            writer.transport.abort()
        self.pipes.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.pipes.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def relayed(database_url: str, dialect: str) -> AsyncIterator[tuple[Relay, str]]:
    if dialect != "postgresql":
        pytest.skip("SQLite is a file: it cannot go away while the server runs")
    parts = urlsplit(database_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    await relay.start()
    netloc = f"{parts.username}@127.0.0.1:{relay.port}"
    yield relay, urlunsplit(parts._replace(netloc=netloc))
    with contextlib.suppress(Exception):
        await relay.cut()


async def test_a_database_that_goes_away_is_a_503_and_the_server_recovers(
    relayed: tuple[Relay, str],
) -> None:
    relay, url = relayed
    store = await asyncio.to_thread(Store, url)
    try:
        app = make_app(store, auth=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            created = await client.post("/api/v1/runs", json=run_body(id="before"))
            assert created.status_code == 201

            await relay.cut()
            down = [
                await client.get("/api/v1/runs/before"),
                await client.get("/api/v1/runs"),
                await client.get("/api/v1/events"),
                await client.post("/api/v1/runs", json=run_body(id="during")),
                await client.post(
                    "/api/v1/feedback", json={"run_id": "before", "key": "thumbs", "value": "up"}
                ),
            ]
            for response in down:
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert error["type"] == "storage_error"
                assert "not answering" in error["message"]

            await relay.start()
            again = await client.post("/api/v1/runs", json=run_body(id="after"))
            assert again.status_code == 201, again.text
            assert (await client.get("/api/v1/runs/before")).status_code == 200
            rated = await client.post(
                "/api/v1/feedback", json={"run_id": "before", "key": "thumbs", "value": "up"}
            )
            assert rated.status_code == 201
            ids = {e.id for e in await asyncio.to_thread(store.events_after, 0)}
            assert {"before", "after"} <= ids
            assert "during" not in ids
    finally:
        await asyncio.to_thread(store.close)
