"""The background batcher: items queue up and a daemon thread sends them in batches.

A batch goes out when it reaches ``max_items`` or ``max_bytes``, or when
``interval`` seconds have passed since the first item waiting. A batch that
fails on the network or with a 5xx is sent again, with the same item ids, after
a growing pause; the server treats a resent id as already done, so retries
neither lose nor double anything. What still cannot be sent is logged and
counted in :attr:`BatchStats.dropped` — the thread never raises into the app.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
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


class BackgroundBatcher:
    def __init__(
        self,
        send: Send,
        *,
        max_items: int = 100,
        max_bytes: int = 1_000_000,
        interval: float = 1.0,
        max_queue: int = 100_000,
        max_retries: int = 8,
        backoff: Callable[[int], float] = lambda attempt: min(10.0, 0.25 * 2**attempt),
        name: str = "tuneback-batcher",
    ) -> None:
        self._send = send
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.interval = interval
        self.max_queue = max_queue
        self.max_retries = max_retries
        self._backoff = backoff
        self.stats = BatchStats()
        self._queue: deque[tuple[dict[str, Any], int]] = deque()
        self._bytes = 0
        self._oldest: float | None = None
        self._in_flight = 0
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
        size = len(json.dumps(item, default=str))
        with self._cond:
            if self._closed or len(self._queue) >= self.max_queue:
                self.stats.dropped += 1
                log.warning("tuneback: dropped an item (%s)", "closed" if self._closed else "full")
                return False
            self._queue.append((item, size))
            self._bytes += size
            self.stats.queued += 1
            if self._oldest is None:
                # The thread sleeps without a deadline while the queue is empty:
                # wake it so it starts timing this batch's interval.
                self._oldest = time.monotonic()
                self._cond.notify_all()
            elif len(self._queue) >= self.max_items or self._bytes >= self.max_bytes:
                self._cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True when it all went (or was given up on) in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._in_flight:
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
            return len(self._queue) + self._in_flight

    # -- the thread ------------------------------------------------------------

    def _due(self) -> bool:
        if not self._queue:
            return False
        if self._flushing or self._closed:
            return True
        if len(self._queue) >= self.max_items or self._bytes >= self.max_bytes:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.interval

    def _take(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        size = 0
        while self._queue and len(batch) < self.max_items:
            item, item_size = self._queue[0]
            if batch and size + item_size > self.max_bytes:
                break
            self._queue.popleft()
            self._bytes -= item_size
            batch.append(item)
            size += item_size
        self._oldest = time.monotonic() if self._queue else None
        self._in_flight = len(batch)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._closed and not self._queue:
                        return
                    wait = None
                    if self._oldest is not None:
                        wait = max(0.0, self.interval - (time.monotonic() - self._oldest))
                    self._cond.wait(wait)
                batch = self._take()
            try:
                self._deliver(batch)
            except Exception:
                # Whatever happened, the host app must not see it.
                self.stats.dropped += len(batch)
                log.exception("tuneback: dropped %d items after an unexpected error", len(batch))
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            try:
                failures = self._send(batch)
            except RetryLater as exc:
                if attempt >= self.max_retries:
                    self.stats.dropped += len(batch)
                    log.error("tuneback: gave up on %d items: %s", len(batch), exc)
                    return
                self.stats.retries += 1
                time.sleep(self._backoff(attempt))
                attempt += 1
                continue
            for failure in failures:
                log.warning(
                    "tuneback: the server refused %s %s: %s",
                    failure.get("type"),
                    failure.get("id"),
                    (failure.get("error") or {}).get("message"),
                )
            self.stats.dropped += len(failures)
            self.stats.sent += len(batch) - len(failures)
            return


def _close_at_exit(ref: weakref.ref[BackgroundBatcher]) -> None:
    batcher = ref()
    if batcher is not None:
        batcher.close(timeout=10.0)
