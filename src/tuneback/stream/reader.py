"""Read the stream back: events after a ``seq``, and a whole log copied into an empty store.

An ordered consumer (ephemeral, no acknowledgements) reads the stream from
where the wanted events begin. Messages carry their ``seq``; a repeat is skipped
and the events come out in ``seq`` order, so a consumer can carry on from the
last ``seq`` it saw exactly as with ``tuneback events --after``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from tuneback.domain import StoredEvent
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.stream.subjects import (
    SEQ_HEADER,
    StreamTarget,
    connect,
    decode_entry,
    decode_message,
)

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from tuneback.storage import Store
    from tuneback.storage.relay import LogEntry

IMPORT_PAGE = 2_000
IDLE_SECONDS = 0.5
REORDER_WINDOW = 10_000
"""Events held while waiting for one that arrived late (after a relay retry)."""


async def _start_at(js: JetStreamContext, stream: str, after: int) -> tuple[int, int]:
    """(stream sequence to start reading at, the stream's last sequence now)."""
    info = await js.stream_info(stream)
    first, last = info.state.first_seq or 0, info.state.last_seq or 0
    if last == 0 or info.state.messages == 0:
        return 0, 0
    if after == 0:
        return first, last
    msg = await js.get_msg(stream, seq=first)
    first_event = int((msg.headers or {}).get(SEQ_HEADER, 1))
    # Stream sequences follow event seqs one for one once the stream holds the
    # log; start a little early in case a retry shifted them, and skip repeats.
    guess = first + (after + 1 - first_event) - 100
    return max(first, min(guess, last)), last


async def read_stream(
    target: StreamTarget,
    *,
    after: int = 0,
    follow: bool = False,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[StoredEvent]:
    """Events with ``seq`` above ``after`` from the stream, oldest first.

    Without ``follow`` it ends at the stream's last message as it was when
    reading began.
    """
    async for data in _read_bodies(target, after=after, follow=follow, stop=stop):
        yield decode_message(data)


async def _read_bodies(
    target: StreamTarget,
    *,
    after: int = 0,
    follow: bool = False,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The bodies of the messages for ``seq`` above ``after``, in ``seq`` order, once each."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError as StreamMissing

    nc = await connect(target, name="tuneback-reader", wait=follow)
    try:
        js = nc.jetstream(timeout=10)
        try:
            start, last = await _start_at(js, target.stream, after)
        except StreamMissing:
            raise NotFoundError(
                f"no stream {target.stream} on {target.url} (run tuneback relay to create it)"
            ) from None
        if start == 0 and not follow:
            return
        if start:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.NONE,
            )
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
        sub = await js.subscribe(
            target.subjects,
            stream=target.stream,
            ordered_consumer=True,
            config=config,
            pending_msgs_limit=100_000,
        )
        expected = after + 1
        held: dict[int, bytes] = {}
        try:
            while stop is None or not stop.is_set():
                try:
                    msg = await sub.next_msg(timeout=IDLE_SECONDS)
                except TimeoutError:
                    if not follow:
                        if held:
                            raise _gap(expected, min(held)) from None
                        return
                    continue
                seq = _seq_header(msg.headers)
                if seq >= expected:
                    held[seq] = msg.data
                    while expected in held:
                        yield held.pop(expected)
                        expected += 1
                    if len(held) > REORDER_WINDOW:
                        raise _gap(expected, min(held))
                if not follow and msg.metadata.sequence.stream >= last:
                    if held:
                        raise _gap(expected, min(held))
                    return
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def _seq_header(headers: dict[str, str] | None) -> int:
    try:
        return int((headers or {})[SEQ_HEADER])
    except (KeyError, ValueError):
        raise ValidationError(
            f"a stream message has no {SEQ_HEADER} header: it was not published by tuneback"
        ) from None


def _gap(expected: int, next_seq: int) -> ConflictError:
    return ConflictError(
        f"the stream is missing events {expected}..{next_seq - 1} "
        "(expired by the stream's max age, or published before the stream was made)",
        details={"missing_from": expected, "missing_to": next_seq - 1},
    )


async def copy_stream_into(
    store: Store,
    target: StreamTarget,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy every event of the stream into an empty store, then build its tables.

    The copy keeps each event's seq, id, time and payload, so the result equals
    the store the stream came from. Returns how many events were copied.
    """
    if await asyncio.to_thread(store.last_seq) != 0:
        raise ValidationError(
            f"database {store.display_url} already holds events: rebuild from a stream "
            "needs an empty database (a new SQLite file or PostgreSQL schema)"
        )
    page: list[LogEntry] = []
    copied = 0
    async for data in _read_bodies(target):
        event = decode_entry(data)
        if not page and copied == 0 and event.seq != 1:
            raise _gap(1, event.seq)
        page.append(event)
        if len(page) >= IMPORT_PAGE:
            await asyncio.to_thread(store.import_events, page)
            copied += len(page)
            page = []
            if progress is not None:
                progress(copied)
    if page:
        await asyncio.to_thread(store.import_events, page)
        copied += len(page)
    await asyncio.to_thread(store.rebuild)
    return copied
