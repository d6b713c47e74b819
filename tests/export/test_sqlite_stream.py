"""On SQLite an export streams with its own settings (temporary files, a small page
cache), and its connection goes back to the pool with the store's settings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from tests.export.seed import add_runs
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, iter_scored_runs
from tuneback.storage.export_reads import EXPORT_CACHE_KIB, STREAM_BATCH

pytestmark = pytest.mark.parametrize("dialect", ["sqlite"])

FILE = 1
"""``PRAGMA temp_store``: temporary tables and sorts in files."""


def settings(raw: Any) -> tuple[int, int]:
    return (
        int(raw.execute("PRAGMA temp_store").fetchone()[0]),
        int(raw.execute("PRAGMA cache_size").fetchone()[0]),
    )


def test_an_export_streams_with_a_small_cache_and_hands_back_the_stores(store: Store) -> None:
    add_runs(store, 0, 2 * STREAM_BATCH)
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        store_settings = settings(raw)
    assert store_settings != (FILE, -EXPORT_CACHE_KIB)
    streamed: list[tuple[int, int]] = []
    returned: list[tuple[int, int]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def export_query(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT runs.id"):
            streamed.append(settings(conn.connection.driver_connection))

    @event.listens_for(store.engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        returned.append(settings(dbapi_connection))

    assert sum(1 for _ in iter_scored_runs(store, RunSelection())) == 2 * STREAM_BATCH
    assert streamed == [(FILE, -EXPORT_CACHE_KIB)]
    assert returned == [store_settings]
