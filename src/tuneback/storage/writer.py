"""The write path: one writer per store that commits whatever is waiting at once.

Every append becomes a :class:`WriteRequest`. From a thread it goes on one
queue: the writer thread takes everything that is waiting (up to a cap),
commits it in one transaction — group commit — and resolves each request's
future. On SQLite, what an event loop's coroutines submit while the loop runs
its ready callbacks is committed by the loop itself, in one transaction right
after them, on a connection that never waits for the write lock (when the lock
is taken, the writer thread commits that group instead). Sync callers wait on
the future; async callers ``await`` it and hold no thread while the commit
happens. A request is acknowledged only after its group committed.

One request stays all-or-nothing; a request that fails (an id already used for
something else, a rule checked inside the write) fails alone. When the group's
transaction itself fails, every request in it is tried again in a transaction of
its own, so only the one at fault sees the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuneback.errors import StorageError
from tuneback.storage.engine import WriterBusy

if TYPE_CHECKING:
    from tuneback.domain import StoredEvent
    from tuneback.storage.commit import PreparedEvent

log = logging.getLogger("tuneback.storage")

GROUP_EVENTS = 5_000
"""The most events one group transaction takes; more wait for the next one."""

GATHER_WAIT = 0.004
"""PostgreSQL: how long the writer may wait for company before it commits a group
smaller than the one before (as PostgreSQL's own ``commit_delay`` does).

A group's fixed cost (its round trips, its rollup rows) is shared by its
requests. Several server processes split the same load into smaller groups.
The wait ends as soon as the group is as large as the one before, and a writer
whose last group was a lone request does not wait at all, so a quiet server
answers as fast as before.
"""
GATHER_UP_TO = 16
"""A group of this many requests is committed without waiting for more."""


@dataclass
class WriteRequest:
    """Events that are stored together or not at all, and how their caller waits.

    A thread waits on ``future``; a coroutine awaits ``waiter``, an asyncio
    future of its own loop. The commit records the outcome with :meth:`done` or
    :meth:`fail`; the writer hands it over once the whole group is through.
    """

    events: Sequence[PreparedEvent]
    future: Future[list[StoredEvent]] | None = None
    waiter: asyncio.Future[list[StoredEvent]] | None = None
    attempts: int = 0
    outcome: list[StoredEvent] | BaseException | None = field(default=None, repr=False)

    def done(self, stored: list[StoredEvent]) -> None:
        if self.outcome is None:
            self.outcome = stored

    def fail(self, exc: BaseException) -> None:
        if self.outcome is None:
            self.outcome = exc


def _settle(pairs: list[tuple[asyncio.Future[Any], list[StoredEvent] | BaseException]]) -> None:
    """Runs in the caller's event loop: one call wakes every coroutine of a group."""
    for waiter, outcome in pairs:
        if waiter.done():  # the caller was cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _outcome(request: WriteRequest) -> list[StoredEvent] | BaseException:
    if request.outcome is None:  # pragma: no cover - every commit path records one
        return StorageError("the write was neither stored nor refused")
    return request.outcome


def _requests(entry: object) -> list[WriteRequest]:
    """The requests of one entry of the writer's queue: one request, or a list queued at once."""
    if isinstance(entry, WriteRequest):
        return [entry]
    assert isinstance(entry, list)
    return entry


CommitGroup = Callable[[list[WriteRequest]], None]
"""Commits a group and resolves every request in it (result or exception)."""

_STOP = object()
_CHECKPOINT = object()
"""Queued for the writer thread: copy what inline commits wrote to the WAL into the file."""

CHECKPOINT_AFTER = 32
"""Inline commits between two checkpoints (SQLite's own default: every 1,000 pages)."""


class GroupWriter:
    """A thread that commits queued write requests in groups, and with ``inline``,
    each event loop committing its coroutines' groups itself.

    The thread is started on first use and stopped by :meth:`close`, which lets
    requests already queued (or waiting for their loop's turn) finish first.
    """

    def __init__(
        self,
        commit: CommitGroup,
        *,
        inline: CommitGroup | None = None,
        checkpoint: Callable[[], None] | None = None,
        gather: float = 0.0,
        name: str = "tuneback-writer",
    ) -> None:
        self._commit = commit
        self._gather = gather
        self._last_size = 0
        self._inline = inline
        self._checkpoint = checkpoint
        self._waiting: dict[asyncio.AbstractEventLoop, list[WriteRequest]] = {}
        self._inline_commits = 0
        self._checkpoint_queued = False
        self._name = name
        self._queue: queue.SimpleQueue[WriteRequest | list[WriteRequest] | object] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(self, events: Sequence[PreparedEvent]) -> Future[list[StoredEvent]]:
        """Queue events to be committed together; the future resolves after commit."""
        future: Future[list[StoredEvent]] = Future()
        self._put(WriteRequest(events, future=future))
        return future

    def submit_each(
        self, requests: Sequence[Sequence[PreparedEvent]]
    ) -> list[Future[list[StoredEvent]]]:
        """Queue requests that each stand alone, all at once; a future for each.

        The writer takes them together. Queued one by one, the first would wake
        the writer, which would commit a part of them while the caller queued the
        rest, the two threads taking turns under Python's interpreter lock (each
        turn costing up to its switch interval: 5 ms).
        """
        futures: list[Future[list[StoredEvent]]] = [Future() for _ in requests]
        if futures:
            self._put(
                [
                    WriteRequest(events, future=f)
                    for events, f in zip(requests, futures, strict=True)
                ]
            )
        return futures

    def submit_async(self, events: Sequence[PreparedEvent]) -> asyncio.Future[list[StoredEvent]]:
        """:meth:`submit` for a coroutine: await the result; no thread waits for it.

        With an ``inline`` commit, the loop commits its own writes: what its
        coroutines submit while it runs its ready callbacks is one group, committed
        in the loop's thread right after them (see :meth:`_commit_inline`).
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[StoredEvent]] = loop.create_future()
        request = WriteRequest(events, waiter=waiter)
        if self._inline is None:
            self._put(request)
            return waiter
        self._refuse_if_closed()
        waiting = self._waiting.get(loop)
        if waiting is None:
            self._waiting[loop] = [request]
            loop.call_soon(self._commit_inline, loop)
        else:
            waiting.append(request)
        return waiter

    def _commit_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit a loop's waiting group in the loop's own thread.

        Two threads taking turns under Python's interpreter lock cost more than
        the commit itself: handed to the writer thread, each request took more
        CPU than committed here. The inline commit never waits for SQLite's write
        lock: when another connection holds it (a command writing, a rebuild),
        the group goes to the writer thread, which waits; the thread also runs
        the checkpoints, so the loop never waits on the disk's flush either.
        """
        group = self._waiting.pop(loop, [])
        if not group:
            return  # close() handed it to the writer thread
        assert self._inline is not None
        try:
            self._inline(group)
        except WriterBusy:
            for request in group:
                if request.outcome is None:
                    try:
                        self._put(request)
                    except StorageError as exc:
                        request.fail(exc)
            group = [request for request in group if request.outcome is not None]
        except BaseException as exc:  # the loop must outlive any one failure
            log.exception("write group failed")
            for request in group:
                request.fail(exc)
        else:
            self._inline_commits += 1
            if self._inline_commits >= CHECKPOINT_AFTER and not self._checkpoint_queued:
                self._inline_commits = 0
                self._checkpoint_queued = True
                self._ensure_started()
                self._queue.put(_CHECKPOINT)
        _settle([(request.waiter, _outcome(request)) for request in group if request.waiter])

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise StorageError("the store is closed: no more writes are taken")

    def _put(self, request: WriteRequest | list[WriteRequest]) -> None:
        self._refuse_if_closed()
        self._ensure_started()
        self._queue.put(request)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                # A daemon so a program that forgets close() can still exit;
                # close() drains the queue before the thread ends.
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def close(self) -> None:
        # Groups still waiting for their loop's turn go to the writer thread.
        for loop in list(self._waiting):
            for request in self._waiting.pop(loop, []):
                self._put(request)
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            if first is _CHECKPOINT:
                self._run_checkpoint()
                continue
            group = _requests(first)
            size = sum(len(request.events) for request in group)
            # After a group with company, more are likely on their way.
            wanted = min(self._last_size, GATHER_UP_TO) if self._last_size > 1 else 0
            deadline = time.monotonic() + self._gather
            while size < GROUP_EVENTS:
                try:
                    wait = deadline - time.monotonic() if len(group) < wanted else 0.0
                    more = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                if more is _CHECKPOINT:
                    self._queue.put(more)  # after this group
                    break
                taken = _requests(more)
                group += taken
                size += sum(len(request.events) for request in taken)
            self._last_size = len(group)
            try:
                self._commit(group)
            except BaseException as exc:  # the writer must outlive any one failure
                log.exception("write group failed")
                for request in group:
                    request.fail(exc)
            self._hand_over(group)

    def _run_checkpoint(self) -> None:
        self._checkpoint_queued = False
        if self._checkpoint is None:
            return
        try:
            self._checkpoint()
        except Exception:  # the next one will try again
            log.exception("checkpoint failed")

    @staticmethod
    def _hand_over(group: list[WriteRequest]) -> None:
        """Give every caller its outcome: threads at once, coroutines one wake-up per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = (
            defaultdict(list)
        )
        for request in group:
            outcome = _outcome(request)
            if request.waiter is not None:
                by_loop[request.waiter.get_loop()].append((request.waiter, outcome))
            elif request.future is not None and not request.future.done():
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)
        for loop, pairs in by_loop.items():
            # A loop that has closed has nobody waiting on it any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, pairs)
