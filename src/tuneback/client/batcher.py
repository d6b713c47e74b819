"""The background batchers: items queue up and are sent in batches, by a daemon
thread (:class:`BackgroundBatcher`, for ``Client``) or by a task on the app's
event loop (:class:`AsyncBatcher`, for ``AsyncClient``); both follow one set of
rules, :class:`BatchRules`.

A batch goes out when it reaches ``max_items`` or ``max_bytes``, or when
``interval`` seconds have passed since the first item waiting. A batch that
fails on the network or with a 5xx is sent again, with the same item ids, after
a growing pause; the server treats a resent id as already done, so retries
neither lose nor double anything. What still cannot be sent is logged and
counted in :attr:`BatchStats.dropped`; neither batcher ever raises into the app.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tuneback.client")


class RetryLater(Exception):
    """The batch could not be delivered now (network, 5xx); try again."""


@dataclass
class BatchStats:
    queued: int = 0
    sent: int = 0
    dropped: int = 0
    """Items given up on: refused by the server, or still failing after every retry."""
    retries: int = 0


Send = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
"""Deliver a batch; returns the per-item errors; raises :class:`RetryLater`."""

AsyncSend = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]
""":data:`Send` for the asyncio batcher."""


def default_backoff(attempt: int) -> float:
    return min(10.0, 0.25 * 2.0**attempt)


class BatchRules:
    """The batching rules both batchers follow: what waits, when a batch is due,
    what goes in it, when to try again, and what each outcome counts.

    It holds no lock and never sleeps: the thread batcher calls it under its
    condition, the asyncio batcher from its loop.
    """

    def __init__(
        self,
        *,
        max_items: int = 100,
        max_bytes: int = 1_000_000,
        interval: float = 1.0,
        max_queue: int = 100_000,
        max_retries: int = 8,
        backoff: Callable[[int], float] = default_backoff,
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.interval = interval
        self.max_queue = max_queue
        self.max_retries = max_retries
        self.backoff = backoff
        self.stats = BatchStats()
        self.queue: deque[tuple[dict[str, Any], int]] = deque()
        self.bytes = 0
        self.oldest: float | None = None
        self.in_flight = 0

    @property
    def pending(self) -> int:
        return len(self.queue) + self.in_flight

    def offer(self, item: dict[str, Any], *, closed: bool) -> bool | None:
        """Queue ``item``: None when it was dropped (queue full or closed), else
        whether the sender should wake (a first item starts the interval, a
        full batch goes at once)."""
        size = len(json.dumps(item, default=str))
        if closed or len(self.queue) >= self.max_queue:
            self.stats.dropped += 1
            log.warning("tuneback: dropped an item (%s)", "closed" if closed else "full")
            return None
        self.queue.append((item, size))
        self.bytes += size
        self.stats.queued += 1
        if self.oldest is None:
            self.oldest = time.monotonic()
            return True
        return len(self.queue) >= self.max_items or self.bytes >= self.max_bytes

    def due(self, *, now: bool) -> bool:
        """A batch should go: ``now`` (a flush or close is waiting), full, or old enough."""
        if not self.queue:
            return False
        if now:
            return True
        if len(self.queue) >= self.max_items or self.bytes >= self.max_bytes:
            return True
        return self.oldest is not None and time.monotonic() - self.oldest >= self.interval

    def wait(self) -> float | None:
        """Seconds until the oldest item's batch is due (None: nothing is waiting)."""
        if self.oldest is None:
            return None
        return max(0.0, self.interval - (time.monotonic() - self.oldest))

    def take(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        size = 0
        while self.queue and len(batch) < self.max_items:
            item, item_size = self.queue[0]
            if batch and size + item_size > self.max_bytes:
                break
            self.queue.popleft()
            self.bytes -= item_size
            batch.append(item)
            size += item_size
        self.oldest = time.monotonic() if self.queue else None
        self.in_flight = len(batch)
        return batch

    def pause_before_retry(
        self, batch: list[dict[str, Any]], attempt: int, exc: Exception
    ) -> float | None:
        """Seconds to wait before sending ``batch`` again; None (and counted) when giving up."""
        if attempt >= self.max_retries:
            self.stats.dropped += len(batch)
            log.error("tuneback: gave up on %d items: %s", len(batch), exc)
            return None
        self.stats.retries += 1
        return self.backoff(attempt)

    def delivered(self, batch: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        for failure in failures:
            log.warning(
                "tuneback: the server refused %s %s: %s",
                failure.get("type"),
                failure.get("id"),
                (failure.get("error") or {}).get("message"),
            )
        self.stats.dropped += len(failures)
        self.stats.sent += len(batch) - len(failures)

    def lost(self, batch: list[dict[str, Any]]) -> None:
        """Whatever went wrong while sending, the host app must not see it."""
        self.stats.dropped += len(batch)
        log.exception("tuneback: dropped %d items after an unexpected error", len(batch))


class BackgroundBatcher:
    """The rules run by a daemon thread, for a synchronous app."""

    def __init__(
        self,
        send: Send,
        *,
        name: str = "tuneback-batcher",
        **options: Any,
    ) -> None:
        self._send = send
        self._rules = BatchRules(**options)
        self.stats = self._rules.stats
        self._flushing = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        # A weak reference: the exit hook must not keep a forgotten client alive.
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    def add(self, item: dict[str, Any]) -> bool:
        """Queue one item; False (and counted as dropped) when the queue is full or closed."""
        with self._cond:
            wake = self._rules.offer(item, closed=self._closed)
            if wake:
                # The thread sleeps without a deadline while the queue is empty:
                # wake it so it starts timing this batch's interval.
                self._cond.notify_all()
        return wake is not None

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True when it all went (or was given up on) in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._rules.pending:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, then stop the thread; items added later are dropped."""
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return done

    @property
    def pending(self) -> int:
        with self._cond:
            return self._rules.pending

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        rules = self._rules
        while True:
            with self._cond:
                while not rules.due(now=bool(self._flushing or self._closed)):
                    if self._closed and not rules.queue:
                        return
                    self._cond.wait(rules.wait())
                batch = rules.take()
            try:
                self._deliver(batch)
            except Exception:
                rules.lost(batch)
            finally:
                with self._cond:
                    rules.in_flight = 0
                    self._cond.notify_all()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            try:
                failures = self._send(batch)
            except RetryLater as exc:
                pause = self._rules.pause_before_retry(batch, attempt, exc)
                if pause is None:
                    return
                time.sleep(pause)
                attempt += 1
                continue
            self._rules.delivered(batch, failures)
            return


class AsyncBatcher:
    """The rules run by a task on the app's event loop, for an asyncio app.

    The task starts with the first item (an ``AsyncClient`` may be made before
    any loop runs) and lives on that item's loop.
    """

    def __init__(self, send: AsyncSend, **options: Any) -> None:
        self._send = send
        self._rules = BatchRules(**options)
        self.stats = self._rules.stats
        self._flushing = 0
        self._closed = False
        # Set for the task (an item, a flush, closing) and for flushes (a batch
        # settled). On one loop nothing runs between a check and the wait after
        # it, so no change is missed.
        self._work = asyncio.Event()
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, item: dict[str, Any]) -> bool:
        """Queue one item (from a coroutine on the app's loop); False when dropped."""
        wake = self._rules.offer(item, closed=self._closed)
        if wake is None:
            return False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="tuneback-batcher"
            )
        if wake:
            self._work.set()
        return True

    @property
    def pending(self) -> int:
        return self._rules.pending

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True when it all went (or was given up on) in time."""
        if self._task is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        self._flushing += 1
        try:
            while self._rules.pending:
                if self._task.done():  # the task ended with its loop: nothing more will go
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._work.set()
                self._settled.clear()
                await _wait(self._settled, remaining)
            return True
        finally:
            self._flushing -= 1

    async def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, then stop the task; items added later are dropped."""
        done = await self.flush(timeout)
        self._closed = True
        if self._task is not None:
            if done:
                self._work.set()
            else:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return done

    async def _run(self) -> None:
        rules = self._rules
        while True:
            while not rules.due(now=bool(self._flushing or self._closed)):
                if self._closed and not rules.queue:
                    return
                self._work.clear()
                await _wait(self._work, rules.wait())
            batch = rules.take()
            try:
                await self._deliver(batch)
            except Exception:
                rules.lost(batch)
            finally:
                rules.in_flight = 0
                self._settled.set()

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            try:
                failures = await self._send(batch)
            except RetryLater as exc:
                pause = self._rules.pause_before_retry(batch, attempt, exc)
                if pause is None:
                    return
                await asyncio.sleep(pause)
                attempt += 1
                continue
            self._rules.delivered(batch, failures)
            return


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _close_at_exit(ref: weakref.ref[BackgroundBatcher]) -> None:
    batcher = ref()
    if batcher is not None:
        batcher.close(timeout=10.0)
