"""The outbox relay publishes every committed event once, in order, and resumes where it stopped."""

from __future__ import annotations

import asyncio

from tests.factories import conversation_events
from tests.stream.conftest import stream_messages
from tuneback.domain import AuditRecorded
from tuneback.storage import Store
from tuneback.stream import Relay, RelayStats, StreamTarget, lease_and_relay, subject_for
from tuneback.stream.reader import read_stream
from tuneback.stream.subjects import connect


def relay_once(store: Store, target: StreamTarget, **options: object) -> None:
    asyncio.run(
        asyncio.wait_for(lease_and_relay(store, target, asyncio.Event(), once=True, **options), 30)
    )


def test_relay_publishes_every_event_once_in_order(
    store: Store, stream_target: StreamTarget
) -> None:
    stored = store.append_many(conversation_events(0) + conversation_events(1, project="a.b"))
    relay_once(store, stream_target)
    messages = asyncio.run(stream_messages(stream_target))
    assert [(seq, msg_id) for seq, msg_id, _ in messages] == [(e.seq, e.id) for e in stored]
    assert [subject for *_, subject in messages] == [
        subject_for(stream_target.prefix, e) for e in stored
    ]
    assert f"{stream_target.prefix}.a%2Eb.conversation.started" in {m[2] for m in messages}
    assert store.relay_position(stream_target.relay_name) == stored[-1].seq


def test_relay_resumes_from_its_position(store: Store, stream_target: StreamTarget) -> None:
    first = store.append_many(conversation_events(0))
    relay_once(store, stream_target)
    second = store.append_many(conversation_events(1))
    # A relay that crashed after publishing but before storing its position
    # starts after what the stream holds, not after its stale position.
    store.record_relay_position(stream_target.relay_name, 2, backwards=True)
    stats = asyncio.run(
        asyncio.wait_for(lease_and_relay(store, stream_target, asyncio.Event(), once=True), 30)
    )
    messages = asyncio.run(stream_messages(stream_target))
    assert [msg_id for _, msg_id, _ in messages] == [e.id for e in first + second]
    assert (stats.published, stats.duplicates) == (len(second), 0)
    assert store.relay_position(stream_target.relay_name) == second[-1].seq


def test_jetstream_drops_a_page_published_twice(store: Store, stream_target: StreamTarget) -> None:
    """Two relays overlapping for a moment (a lease changing hands) publish the same page."""
    stored = store.append_many(conversation_events(0))
    relay_once(store, stream_target)

    async def publish_again() -> RelayStats:
        nc = await connect(stream_target, name="test", wait=False)
        try:
            relay = Relay(store, stream_target)
            relay._stream_last = 0  # as if it had synced before the other relay published
            assert await relay._publish(nc.jetstream(), stored)
            return relay.stats
        finally:
            await nc.close()

    stats = asyncio.run(asyncio.wait_for(publish_again(), 30))
    assert (stats.published, stats.duplicates) == (0, len(stored))
    messages = asyncio.run(stream_messages(stream_target))
    assert [msg_id for _, msg_id, _ in messages] == [e.id for e in stored]


def test_system_events_go_under_the_reserved_project(
    store: Store, stream_target: StreamTarget
) -> None:
    audit = store.append(AuditRecorded(action="user.signed_in", actor="ann"))
    relay_once(store, stream_target)
    messages = asyncio.run(stream_messages(stream_target))
    assert [subject for *_, subject in messages] == [
        f"{stream_target.prefix}._system.audit.recorded"
    ]
    assert audit.project == "_system"


def test_read_stream_after_a_seq(store: Store, stream_target: StreamTarget) -> None:
    stored = store.append_many(conversation_events(0) + conversation_events(1))
    relay_once(store, stream_target, batch=5)

    async def read(after: int) -> list[int]:
        return [event.seq async for event in read_stream(stream_target, after=after)]

    assert asyncio.run(read(0)) == [e.seq for e in stored]
    assert asyncio.run(read(7)) == [e.seq for e in stored if e.seq > 7]
    assert asyncio.run(read(stored[-1].seq)) == []
    read_back = asyncio.run(_collect(stream_target))
    assert read_back == [e.to_json_dict() for e in store.events_after(0, 10_000)]


async def _collect(target: StreamTarget) -> list[dict[str, object]]:
    return [event.to_json_dict() async for event in read_stream(target)]


def test_follow_the_stream_as_the_relay_publishes(
    store: Store, stream_target: StreamTarget
) -> None:
    first = store.append_many(conversation_events(0))
    relay_once(store, stream_target)

    async def follow() -> list[int]:
        stop = asyncio.Event()
        seen: list[int] = []

        async def reader() -> None:
            async for event in read_stream(stream_target, after=10, follow=True, stop=stop):
                seen.append(event.seq)
                if len(seen) == len(first) - 10 + 25:
                    return

        task = asyncio.create_task(reader())
        relay = asyncio.create_task(lease_and_relay(store, stream_target, stop))
        await asyncio.to_thread(store.append_many, conversation_events(1))
        try:
            await asyncio.wait_for(task, 20)
        finally:
            stop.set()
            await asyncio.wait_for(relay, 20)
        return seen

    assert asyncio.run(follow()) == list(range(11, len(first) + 26))
