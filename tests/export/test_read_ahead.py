"""PostgreSQL streams fetch a batch ahead in a thread that ends with the stream.

Left early, the stream stops its thread and gives its connection back; when
the database goes away mid-export, the driver's error reaches the caller (what
the API answers with 503) instead of a hang or a silently short file.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sqlalchemy.exc import OperationalError

from tests.export.seed import add_runs
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, iter_scored_runs
from tuneback.storage.export_reads import STREAM_BATCH

RUNS = 5 * STREAM_BATCH

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tuneback-export-read-ahead"]


def test_a_stream_left_early_stops_its_reader(store: Store) -> None:
    add_runs(store, 0, RUNS)
    runs = iter_scored_runs(store, RunSelection())
    assert [next(runs).id for _ in range(3)] == ["run-00000000", "run-00000001", "run-00000002"]
    assert len(readers()) == 1
    runs.close()
    assert readers() == []
    again = [run.id for run in iter_scored_runs(store, RunSelection())]
    assert again == [f"run-{i:08d}" for i in range(RUNS)]
    assert readers() == []


LEFT_OPEN = """
import sys
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, iter_scored_runs

runs = iter_scored_runs(Store(sys.argv[1], migrate_schema=False), RunSelection())
next(runs)
raise SystemExit("stopped with the stream still open")
"""


def test_a_program_that_stops_with_a_stream_open_still_exits(
    store: Store, database_url: str
) -> None:
    # Nothing closes the stream before the interpreter waits for its threads:
    # a reader the interpreter waited for would hang the program for good.
    add_runs(store, 0, RUNS)
    ended = subprocess.run(
        [sys.executable, "-c", LEFT_OPEN, database_url], capture_output=True, text=True, timeout=60
    )
    assert (ended.returncode, ended.stderr.strip()) == (1, "stopped with the stream still open")


def test_the_database_going_away_mid_stream_reaches_the_caller(store: Store) -> None:
    add_runs(store, 0, RUNS)
    runs = iter_scored_runs(store, RunSelection())
    read = [next(runs).id]
    with store.engine.connect() as admin:
        killed = admin.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar_one()
    assert killed >= 1
    with pytest.raises(OperationalError):
        read.extend(run.id for run in runs)
    # What was fetched before the connection went away, and not the rest.
    assert STREAM_BATCH <= len(read) < RUNS
    assert readers() == []
