"""The write path: one writer thread per store that commits whatever is waiting at once.

Every append, from any thread or event loop, becomes a :class:`WriteRequest`
on one queue. The writer thread takes everything that is waiting (up to a cap),
commits it in one transaction — group commit — and resolves each request's
future. Sync callers wait on the future; async callers ``await`` it and hold no
thread while the commit happens. A request is acknowledged only after its
group committed.

One request stays all-or-nothing; a request that fails (an id already used for
something else, a rule checked inside the write) fails alone. When the group's
transaction itself fails, every request in it is tried again in a transaction of
its own, so only the one at fault sees the error.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuneback.errors import StorageError

if TYPE_CHECKING:
    from tuneback.domain import StoredEvent
    from tuneback.storage.commit import PreparedEvent

log = logging.getLogger("tuneback.storage")

GROUP_EVENTS = 5_000
"""The most events one group transaction takes; more wait for the next one."""


@dataclass
class WriteRequest:
    """Events that are stored together or not at all, and the future of their result."""

    events: Sequence[PreparedEvent]
    future: Future[list[StoredEvent]] = field(default_factory=Future)
    attempts: int = 0

    def done(self, stored: list[StoredEvent]) -> None:
        if not self.future.done():
            self.future.set_result(stored)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


CommitGroup = Callable[[list[WriteRequest]], None]
"""Commits a group and resolves every request in it (result or exception)."""

_STOP = object()


class GroupWriter:
    """A thread that commits queued write requests in groups.

    Started on first use and stopped by :meth:`close`, which lets requests
    already queued finish first.
    """

    def __init__(self, commit: CommitGroup, *, name: str = "tuneback-writer") -> None:
        self._commit = commit
        self._name = name
        self._queue: queue.SimpleQueue[WriteRequest | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(self, events: Sequence[PreparedEvent]) -> Future[list[StoredEvent]]:
        """Queue events to be committed together; the future resolves after commit."""
        if self._closed:
            raise StorageError("the store is closed: no more writes are taken")
        request = WriteRequest(events)
        self._ensure_started()
        self._queue.put(request)
        return request.future

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
            assert isinstance(first, WriteRequest)
            group = [first]
            size = len(first.events)
            while size < GROUP_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                assert isinstance(more, WriteRequest)
                group.append(more)
                size += len(more.events)
            try:
                self._commit(group)
            except BaseException as exc:  # the writer must outlive any one failure
                log.exception("write group failed")
                for request in group:
                    request.fail(exc)
