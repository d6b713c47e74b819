"""How an export reads: its connection's settings, streamed rows, reading ahead.

:mod:`tuneback.storage.export_queries` says *what* an export reads; every one of
its queries goes through :func:`export_connection` (counts and split points too)
and, for rows, :func:`stream`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from queue import Full, Queue
from typing import Any, NamedTuple

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Result

from tuneback.domain.json_encoding import json_loads
from tuneback.storage.store import Store

STREAM_BATCH = 2_000
"""Rows fetched from the database at a time."""

EXPORT_CACHE_KIB = 4_000
"""SQLite's page cache while an export streams (the store's is 32 MB)."""

SQLITE_EXPORT_PRAGMAS = {"temp_store": "FILE", "cache_size": f"-{EXPORT_CACHE_KIB}"}
"""Set on a SQLite connection while an export streams from it, and restored after."""


@contextmanager
def export_connection(store: Store) -> Iterator[Connection]:
    """A connection for an export's reads (its counts and split points too).

    The store keeps SQLite's temporary tables in memory (fast for small
    queries); an export's sorts and groupings span whole tables, so they go to
    temporary files instead and the process stays the same size. SQLite's page
    cache, which also bounds how much of a sort is held in memory, shrinks to
    :data:`EXPORT_CACHE_KIB`: the store's (32 MB) filled up further with a
    bigger store, and a million-run DPO export peaked 14 MB above one of 250k.
    SQLite takes these pragmas only outside a transaction, hence the raw
    connection.

    PostgreSQL plans without parallel workers: an export keeps the cores busy
    already (its own Python, often a second process), and each worker built the
    same hash of every rated run's score again. Counting a million rated
    answers took 0.9-1.0 s and 1.8 s of the server's CPU in parallel, 0.65 s
    of both serially.

    The store's own settings come back before the connection returns to the pool.
    """
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        saved: list[tuple[str, int]] = []
        if raw is not None:
            saved = [
                (name, int(raw.execute(f"PRAGMA {name}").fetchone()[0]))
                for name in SQLITE_EXPORT_PRAGMAS
            ]
            for name, setting in SQLITE_EXPORT_PRAGMAS.items():
                raw.execute(f"PRAGMA {name}={setting}")
        else:
            conn.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
            conn.commit()
        try:
            yield conn
        finally:
            # A connection the database dropped has nothing to restore: a new one starts afresh.
            if not conn.invalidated:
                _restore(conn, raw, saved)


def _restore(conn: Connection, raw: Any, saved: list[tuple[str, int]]) -> None:
    if conn.in_transaction():
        conn.rollback()
    if raw is not None:
        for name, before in saved:
            raw.execute(f"PRAGMA {name}={before}")
    else:
        conn.exec_driver_sql("RESET max_parallel_workers_per_gather")
        conn.commit()


def stream(store: Store, query: Select[Any], batch: int = STREAM_BATCH) -> Iterator[Any]:
    streamed = query.execution_options(stream_results=True, yield_per=batch)
    with export_connection(store) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # A cursor is planned to return its first tenth fast, which
            # favours nested loops; an export reads every row, so plan for all.
            conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
            yield from read_ahead(lambda: conn.execute(streamed))
        else:
            yield from conn.execute(streamed)


class _Failed(NamedTuple):
    error: BaseException


_DONE = object()


def read_ahead(execute: Callable[[], Result[Any]]) -> Iterator[Any]:
    """The rows of ``execute()``, fetched by a thread one batch ahead of the caller.

    PostgreSQL runs a streamed query a batch at a time, when the cursor asks for
    the next batch; asked only once the caller has worked through the last one,
    the server and Python would take turns. Here the next batch is fetched while
    the caller works, and the thread ends with the stream (or when the caller
    stops reading, or the program ends). SQLite gains nothing: its work happens
    in this process, under a lock that this thread would have to win back after
    every row.
    """
    batches: Queue[Any] = Queue(maxsize=1)
    stop = threading.Event()
    main = threading.main_thread()

    def put(item: Any) -> bool:
        # A program that ends with a stream left open waits for this thread
        # before anything could close the stream: the main thread's end stops it.
        while not stop.is_set() and main.is_alive():
            try:
                batches.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        try:
            result = execute()
            try:
                for part in result.partitions():
                    if not put(part):
                        return
            finally:
                result.close()
        except BaseException as error:  # handed to the caller, raised there
            put(_Failed(error))
            return
        put(_DONE)

    worker = threading.Thread(target=read, name="tuneback-export-read-ahead")
    worker.start()
    try:
        while True:
            item = batches.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield from item
    finally:
        stop.set()
        worker.join()


class JsonDecoder:
    """Decodes a JSON text column, reusing the last value when the text repeats.

    The training queries read ``inputs`` as text rather than through the JSON
    type: neighbouring rows often hold the same prompt (answers in one group,
    regenerations, samples of one question), and decoding it once saves the
    most expensive step per row.
    """

    def __init__(self) -> None:
        self._text: str | None = None
        self._value: Any = None

    def __call__(self, text: str) -> Any:
        if text != self._text:
            self._text, self._value = text, json_loads(text)
        return self._value
