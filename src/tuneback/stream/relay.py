"""The outbox relay: every committed event, published to JetStream, once and in order.

The event log is the outbox. ``seq`` is gapless and in commit order (see
:mod:`tuneback.storage.commit`), so the relay keeps one number — the last
``seq`` JetStream acknowledged — and reads the events after it, page by page:

1. read up to ``batch`` events after the position (payloads as stored, unparsed);
2. publish them all at once, in order, each with ``Nats-Msg-Id`` = event id and
   ``Nats-Expected-Last-Sequence`` = the stream sequence it must follow;
3. wait for every acknowledgement, then store the new position.

On start, and after any failure, the relay reads the stream's last message and
carries on after the larger of its stored position and the ``seq`` that message
carries: a crash between 2 and 3 does not publish the page again, however long
the relay was down. The expected sequence keeps the stream in ``seq`` order
when NATS restarts with messages in flight: one lost makes JetStream refuse
every later one of the page, instead of storing them ahead of it. Two relays
overlapping for a moment (a lease changing hands) publish the same ids, and
JetStream drops the repeats within its duplicate window. A stream that has
never held a message is filled from the start of the log.

While NATS is down the relay waits and retries; nothing moves forward until
JetStream has acknowledged it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from tuneback.domain import StoredEvent
from tuneback.stream.subjects import (
    EXPECTED_LAST_HEADER,
    MSG_ID_HEADER,
    SEQ_HEADER,
    StreamTarget,
    connect,
    encode_message,
    ensure_stream,
    subject_for,
)

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from tuneback.storage import Store
    from tuneback.storage.relay import LogEntry

log = logging.getLogger("tuneback.stream")

BATCH = 500
INTERVAL = 0.02
"""Seconds between polls of an idle log: the floor of the relay's lag."""
ACK_TIMEOUT = 5.0
RETRY_SECONDS = 0.5
LEASE_CHECK_SECONDS = 1.0
LEASE_RETRY_SECONDS = 2.0


@dataclass
class RelayStats:
    """What a relay did: events JetStream stored, repeats it dropped, where it is."""

    published: int = 0
    duplicates: int = 0
    position: int = 0
    failures: int = 0
    started: float = field(default_factory=time.monotonic)


class Relay:
    """Publishes the log of ``store`` to ``target``, from its stored position on."""

    def __init__(
        self,
        store: Store,
        target: StreamTarget,
        *,
        batch: int = BATCH,
        interval: float = INTERVAL,
    ) -> None:
        self.store = store
        self.target = target
        self.batch = batch
        self.interval = interval
        self.stats = RelayStats()
        self._stream_last = 0

    async def run(
        self,
        stop: asyncio.Event,
        *,
        keep_going: Callable[[], Awaitable[bool]] | None = None,
        once: bool = False,
    ) -> RelayStats:
        """Relay until ``stop`` is set, ``keep_going`` says no, or (``once``) the log is drained."""
        nc = None
        try:
            while not stop.is_set():
                try:
                    nc = await connect(self.target, name="tuneback-relay")
                    break
                except Exception as exc:
                    self.stats.failures += 1
                    log.warning("relay: %s; retrying", exc)
                    if await _wait(stop, RETRY_SECONDS):
                        return self.stats
            if nc is None:
                return self.stats
            js = nc.jetstream(timeout=ACK_TIMEOUT)
            position = await self._sync(js, stop)
            self.stats.position = position
            end = await asyncio.to_thread(self.store.last_seq) if once else None
            checked = time.monotonic()
            while not stop.is_set():
                if keep_going is not None and time.monotonic() - checked > LEASE_CHECK_SECONDS:
                    checked = time.monotonic()
                    if not await keep_going():
                        log.warning("relay: lost the lease; another process relays now")
                        break
                if end is not None and position >= end:
                    break
                events = await asyncio.to_thread(self.store.log_after, position, self.batch)
                if not events:
                    if end is not None:
                        break
                    await _wait(stop, self.interval)
                    continue
                if await self._publish(js, events):
                    position = events[-1].seq
                    await asyncio.to_thread(
                        self.store.record_relay_position, self.target.relay_name, position
                    )
                    self.stats.position = position
                    continue
                # Part of the page may be in the stream (in order: see _publish);
                # carry on after what it holds.
                if await _wait(stop, RETRY_SECONDS):
                    break
                position = await self._sync(js, stop)
            return self.stats
        finally:
            if nc is not None:
                # Closing a broken connection may fail too.
                with suppress(Exception):
                    await asyncio.wait_for(nc.close(), timeout=5)

    async def _sync(self, js: JetStreamContext, stop: asyncio.Event) -> int:
        """Where to publish from: after the stored position, or after what the stream holds."""
        while True:
            try:
                await ensure_stream(js, self.target)
                stored = await asyncio.to_thread(self.store.relay_position, self.target.relay_name)
                info = await js.stream_info(self.target.stream)
                self._stream_last = info.state.last_seq or 0
                if self._stream_last == 0:
                    if stored:
                        log.warning(
                            "relay: stream %s is new; publishing the log from the start",
                            self.target.stream,
                        )
                    return 0
                held = 0
                if info.state.messages:
                    held = await _seq_of(js, self.target.stream, self._stream_last)
                return max(stored, held)
            except Exception as exc:
                self.stats.failures += 1
                log.warning("relay: cannot open stream %s: %s", self.target.stream, exc)
                if await _wait(stop, RETRY_SECONDS):
                    return 0

    async def _publish(
        self, js: JetStreamContext, events: Sequence[StoredEvent | LogEntry]
    ) -> bool:
        """Publish a page and wait for every acknowledgement; False if any failed.

        Each message names the stream sequence it must land on
        (``Nats-Expected-Last-Sequence``): if one is lost on the way (NATS
        restarting), JetStream refuses every later one instead of storing them
        ahead of it, so the stream stays in ``seq`` order.
        """
        prefix = self.target.prefix
        # No stall timeout: it would wrap each publish in a task, and the
        # connection would then flush after every message instead of once a page.
        futures: list[asyncio.Future[Any]] = []
        try:
            for n, event in enumerate(events):
                futures.append(
                    await js.publish_async(
                        subject_for(prefix, event),
                        encode_message(event),
                        headers={
                            MSG_ID_HEADER: event.id,
                            SEQ_HEADER: str(event.seq),
                            EXPECTED_LAST_HEADER: str(self._stream_last + n),
                        },
                    )
                )
            acks = await asyncio.wait_for(asyncio.gather(*futures), timeout=ACK_TIMEOUT)
        except Exception as exc:
            for future in futures:
                future.cancel()
            self.stats.failures += 1
            log.warning(
                "relay: publishing events %d..%d failed (%s: %s); retrying",
                events[0].seq,
                events[-1].seq,
                type(exc).__name__,
                exc,
            )
            return False
        for ack in acks:
            if ack.duplicate:
                self.stats.duplicates += 1
                continue
            self.stats.published += 1
            self._stream_last = ack.seq
        return True


async def _seq_of(js: JetStreamContext, stream: str, stream_seq: int) -> int:
    """The event seq of the stream's message at ``stream_seq`` (0: gone, or not ours)."""
    from nats.js.errors import NotFoundError

    try:
        msg = await js.get_msg(stream, seq=stream_seq)
    except NotFoundError:
        return 0
    headers: dict[str, Any] = msg.headers or {}
    try:
        return int(headers.get(SEQ_HEADER, 0))
    except ValueError:
        return 0


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def lease_and_relay(
    store: Store,
    target: StreamTarget,
    stop: asyncio.Event,
    *,
    once: bool = False,
    batch: int = BATCH,
    interval: float = INTERVAL,
    on_lease: Callable[[bool], None] | None = None,
) -> RelayStats:
    """Relay while this process holds the relay's lease; wait for it while another does.

    Every worker of ``tuneback serve`` runs this: the one holding the lease relays,
    the others check every few seconds and take over when it is released.
    """
    stats = RelayStats()
    while not stop.is_set():
        try:
            lease = await asyncio.to_thread(store.relay_lease, target.relay_name)
        except Exception as exc:
            log.warning("relay: cannot take the lease: %s", exc)
            lease = None
        if lease is None:
            if on_lease is not None:
                on_lease(False)
            if await _wait(stop, LEASE_RETRY_SECONDS):
                break
            continue
        if on_lease is not None:
            on_lease(True)
        try:
            log.info("relay: publishing to %s (stream %s)", target.url, target.stream)
            relay = Relay(store, target, batch=batch, interval=interval)
            stats = await relay.run(
                stop, keep_going=partial(asyncio.to_thread, lease.holds), once=once
            )
        except Exception as exc:
            if once:
                raise
            # The database went away (a restart, a failover): start again once it is back.
            log.warning("relay: stopped by %s: %s; starting again", type(exc).__name__, exc)
            await _wait(stop, RETRY_SECONDS)
            continue
        finally:
            await asyncio.to_thread(lease.release)
        if once:
            break
    return stats


class BackgroundRelay:
    """The relay as a task of a server's lifespan: every worker starts one, one leads.

    ``leading`` says whether this process holds the lease now.
    """

    def __init__(self, store: Store, target: StreamTarget) -> None:
        self.store = store
        self.target = target
        self.leading = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[RelayStats] | None = None

    def _on_lease(self, held: bool) -> None:
        self.leading = held

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            lease_and_relay(self.store, self.target, self._stop, on_lease=self._on_lease),
            name="tuneback-relay",
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the page in flight (or give up after ``timeout``) and release the lease."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(task, timeout=timeout)
        except TimeoutError:
            log.warning("relay: did not stop within %.0f s; cancelled", timeout)
        except Exception:
            log.exception("relay: stopped with an error")
        self.leading = False
