"""The relay inside the server: every worker runs one, exactly one publishes, another takes over."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from tests.factories import conversation_events
from tests.stream.conftest import stream_messages
from tuneback.config import Settings
from tuneback.server import create_app
from tuneback.storage import Store
from tuneback.stream import StreamTarget, lease_and_relay


def wait_for_messages(target: StreamTarget, count: int, seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            ids = [msg_id for _, msg_id, _ in asyncio.run(stream_messages(target))]
        except Exception:
            ids = []
        if len(ids) >= count or time.monotonic() > deadline:
            return ids
        time.sleep(0.1)


def test_server_relays_while_it_runs(
    store: Store, stream_target: StreamTarget, database_url: str
) -> None:
    settings = Settings(
        database_url=database_url,
        nats_url=stream_target.url,
        nats_stream=stream_target.stream,
        nats_subject=stream_target.prefix,
        model="echo",
    )
    app = create_app(settings, store=store, models=["echo"])
    with TestClient(app):
        stored = store.append_many(conversation_events(0))
        assert wait_for_messages(stream_target, len(stored)) == [e.id for e in stored]
        assert app.state.relay.leading
        more = store.append_many(conversation_events(1))
        assert wait_for_messages(stream_target, len(stored + more)) == [e.id for e in stored + more]
    assert store.relay_position(stream_target.relay_name) == more[-1].seq


def test_one_relay_leads_and_another_takes_over(
    store: Store, stream_target: StreamTarget, database_url: str
) -> None:
    """Two workers (two stores on one database): one publishes; when it stops, the other does."""
    leads: dict[str, bool] = {"first": False, "second": False}

    async def scenario() -> list[str]:
        with Store(database_url) as other:
            stops = {"first": asyncio.Event(), "second": asyncio.Event()}

            def relay(name: str, on: Store) -> asyncio.Task[object]:
                def noted(held: bool) -> None:
                    leads[name] = held

                return asyncio.create_task(
                    lease_and_relay(on, stream_target, stops[name], on_lease=noted)
                )

            first = relay("first", store)
            await asyncio.sleep(0.3)
            second = relay("second", other)
            written = await asyncio.to_thread(store.append_many, conversation_events(0))
            await asyncio.sleep(0.5)
            assert leads == {"first": True, "second": False}
            stops["first"].set()
            await asyncio.wait_for(first, 10)
            written += await asyncio.to_thread(other.append_many, conversation_events(1))
            deadline = time.monotonic() + 10
            while other.relay_position(stream_target.relay_name) < written[-1].seq:
                assert time.monotonic() < deadline, "the second relay did not take over"
                await asyncio.sleep(0.1)
            assert leads["second"]
            stops["second"].set()
            await asyncio.wait_for(second, 10)
            return [e.id for e in written]

    ids = asyncio.run(asyncio.wait_for(scenario(), 40))
    assert [msg_id for _, msg_id, _ in asyncio.run(stream_messages(stream_target))] == ids
