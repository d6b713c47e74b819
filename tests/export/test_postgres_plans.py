"""On PostgreSQL an export's reads plan without parallel workers, and its connection goes
back to the pool with the server's own setting."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from tests.export.seed import add_runs
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, count_rated_runs, iter_scored_runs

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])


def workers(raw: Any) -> str:
    return str(raw.execute("SHOW max_parallel_workers_per_gather").fetchone()[0])


def test_an_export_reads_serially_and_hands_back_the_servers_setting(store: Store) -> None:
    add_runs(store, 0, 10)
    with store.engine.connect() as conn:
        default = workers(conn.connection.driver_connection)
    assert default != "0"
    planned: list[str] = []
    returned: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def export_query(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(("SELECT runs.id", "SELECT count(*)")):
            planned.append(workers(conn.connection.driver_connection))

    @event.listens_for(store.engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        returned.append(workers(dbapi_connection))
        dbapi_connection.rollback()

    assert sum(1 for _ in iter_scored_runs(store, RunSelection())) == 10
    count_rated_runs(store, RunSelection())
    assert planned == ["0", "0"]
    assert returned == [default, default]
