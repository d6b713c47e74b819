"""Memory stays flat as the data grows: exporting 4N runs peaks no higher than exporting N.

Each size is measured in a fresh subprocess. An export runs once to warm up
(the allocator's heap, the driver), then again with the peak RSS reset
(``/proc/self/clear_refs``); that second peak is compared between the sizes.
SQLite's page cache is cut to 1 MB there: the store's 32 MB cache fills as the
file grows, which is a cache, not the export. Deduplication is on, as by
default; an export that kept 100 bytes for each kto row written would peak 6 MB
higher at the larger size.

The runs are inserted straight into the tables the exporter reads (runs and
feedback), which takes seconds where appending the events would take minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export.seed import add_runs
from tuneback.storage import Store

pytestmark = pytest.mark.slow

N = 20_000

MEASURE = """
import json, sys
from sqlalchemy import event
from tuneback.export import export_dataset
from tuneback.storage import Store

def peak_rss():
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith("VmHWM:"))

url, out = sys.argv[1:3]
result = {}
with Store(url, migrate_schema=False) as store:
    if store.dialect == "sqlite":
        @event.listens_for(store.engine, "connect")
        def small_cache(connection, record):
            connection.execute("PRAGMA cache_size=-1000")
        store.engine.dispose()
    for fmt in ("kto", "dpo"):
        export_dataset(store, format=fmt, output=out, force=True)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current resident set
        summary = export_dataset(store, format=fmt, output=out, force=True)
        result[fmt] = (summary.rows_written, peak_rss())
print(json.dumps(result))
"""


def export_memory(url: str, out: Path) -> dict[str, tuple[int, int]]:
    """(rows written, peak resident bytes of the second export) for kto and dpo."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, url, str(out)], check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (int(rows), int(peak)) for name, (rows, peak) in result.items()}


@pytest.mark.skipif(sys.platform != "linux", reason="reads and resets /proc/self peaks")
def test_peak_memory_does_not_grow_with_row_count(database_url: str, tmp_path: Path) -> None:
    with Store(database_url) as store:
        add_runs(store, 0, N)
        small = export_memory(database_url, tmp_path)
        add_runs(store, N, 3 * N)
    large = export_memory(database_url, tmp_path)

    assert (small["kto"][0], large["kto"][0]) == (N, 4 * N)
    assert (small["dpo"][0], large["dpo"][0]) == (N // 2, 2 * N)
    for fmt in ("kto", "dpo"):
        # Four times the rows, the same peak within 4 MB: SQLite's own sorting and
        # temporary tables take up to 3 MB more for the bigger file here (0.1 MB on
        # PostgreSQL); keeping 100 bytes per kto row would add 6 MB.
        assert large[fmt][1] - small[fmt][1] < 4 << 20, (fmt, small[fmt], large[fmt])
