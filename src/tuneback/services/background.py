"""Work that runs off the request path, owned by whoever owns the app's life.

A streamed answer is driven by a thread of its own, a closed page leaves a
reply to be stopped and recorded, an annotation task answers its prompts one
after another, and each side of a battle streams at the same time. All of it
goes through one :class:`BackgroundWork`, which the app creates and shuts down
in its lifespan: at shutdown it takes no new work, asks the work that can be
cancelled to stop (each piece says how when it is started), and waits, up to a
bound, for every piece to finish, so a write in progress is never cut off by
the process ending. A chat answer streamed to a page is pulled by that page's
request rather than by a thread of this owner's: it is *held* instead
(:meth:`BackgroundWork.holding`), so that shutdown can stop it and wait until
its run is stored all the same.

Every piece gets a thread of its own rather than a place in a bounded pool:
a streamed answer must start the moment it is asked for, and a pool that is
full would make the next client wait for someone else's answer to end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tuneback.errors import ModelUnavailableError

log = logging.getLogger("tuneback.background")

SHUTDOWN_TIMEOUT = 30.0
"""Seconds shutdown waits for running work before leaving it to the process's end."""


class ShuttingDownError(ModelUnavailableError):
    """New work was asked for while the server is stopping (a 503: try another server)."""


class Job:
    """One piece of background work: its thread and how to ask it to stop."""

    def __init__(
        self,
        work: BackgroundWork,
        target: Callable[..., Any],
        args: tuple[Any, ...],
        name: str,
        cancel: Callable[[], None] | None,
    ) -> None:
        self.name = name
        self._work = work
        self._target = target
        self._args = args
        self._cancel = cancel
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._target(*self._args)
        except Exception:
            # Work in the background has nobody to raise to; say what broke.
            log.exception("background work %s failed", self.name)
        finally:
            self._work._forget(self)

    def cancel(self) -> None:
        """Ask the work to stop, if it said how; it still finishes what it is writing."""
        if self._cancel is not None:
            try:
                self._cancel()
            except Exception:
                log.exception("could not cancel background work %s", self.name)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the work to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class Hold:
    """Work running on a thread someone else drives (a page's stream): how to stop it, and
    whether it has let go yet."""

    def __init__(self, name: str, cancel: Callable[[], None]) -> None:
        self.name = name
        self._cancel = cancel
        self._released = threading.Event()

    def cancel(self) -> None:
        try:
            self._cancel()
        except Exception:
            log.exception("could not cancel %s", self.name)

    def join(self, timeout: float | None = None) -> bool:
        return self._released.wait(timeout)

    @property
    def running(self) -> bool:
        return not self._released.is_set()


class BackgroundWork:
    """The owner of an app's background work: start pieces, then shut them all down once."""

    def __init__(self, name: str = "tuneback") -> None:
        self.name = name
        self._jobs: set[Job | Hold] = set()
        self._lock = threading.Lock()
        self._closed = False

    def start(
        self,
        target: Callable[..., Any],
        *args: Any,
        name: str,
        cancel: Callable[[], None] | None = None,
        finishing: bool = False,
    ) -> Job:
        """Run ``target(*args)`` in a thread of its own, now.

        ``cancel`` is how shutdown asks it to stop early (it must stop on its
        own after that, keeping or discarding what it has, never half-writing).
        Once shutdown has begun new work is refused with
        :class:`ShuttingDownError`, except ``finishing`` work: the work that
        ends other work (stopping an abandoned answer and recording it), which
        shutdown then waits for as well.
        """
        job = Job(self, target, args, name, cancel)
        with self._lock:
            if self._closed and not finishing:
                raise ShuttingDownError(
                    "the server is shutting down and takes no new work; try again in a moment",
                    details={"reason": "shutting_down"},
                )
            self._jobs.add(job)
        job._thread.start()
        return job

    @contextmanager
    def holding(self, name: str, *, cancel: Callable[[], None]) -> Iterator[None]:
        """Count work driven from elsewhere as running until the block ends.

        A streamed chat answer is pulled by the request that shows it, not by a
        thread of this owner's; holding it lets shutdown ``cancel`` it and wait
        until it is stored. Once shutdown has begun the work is taken all the
        same and cancelled at once, so it ends (and is recorded) right away.
        """
        hold = Hold(name, cancel)
        with self._lock:
            self._jobs.add(hold)
            closed = self._closed
        if closed:
            hold.cancel()
        try:
            yield
        finally:
            with self._lock:
                self._jobs.discard(hold)
            hold._released.set()

    def _forget(self, job: Job | Hold) -> None:
        with self._lock:
            self._jobs.discard(job)

    @property
    def running(self) -> list[str]:
        """The names of the work still running."""
        with self._lock:
            return sorted(job.name for job in self._jobs)

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> list[str]:
        """Take no new work, cancel what can be cancelled, and wait up to ``timeout`` seconds.

        Returns the names of the work still running when the time ran out
        (logged too): those threads are left to end with the process.
        """
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + timeout
        asked: set[Job | Hold] = set()
        while True:
            # Work that finishes other work may start while this waits: take it in too.
            with self._lock:
                jobs = [job for job in self._jobs if job.running]
            for job in jobs:
                if job not in asked:
                    asked.add(job)
                    job.cancel()
            remaining = deadline - time.monotonic()
            if not jobs or remaining <= 0:
                break
            jobs[0].join(min(remaining, 0.05))
        left = self.running
        if left:
            log.warning(
                "shutdown left %d piece(s) of background work running after %.0f s: %s",
                len(left),
                timeout,
                ", ".join(left),
            )
        return left
