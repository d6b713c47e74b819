"""Memory stays flat as the data grows: exporting 4N runs peaks no higher than exporting N.

Each size is measured in a fresh subprocess. An export runs once to warm up
(the allocator's heap, the driver), then four times more, twice for each of two
measures, whose lower peak is compared (where the threads reading ahead stand
at the peak moves it from one export to the next):

* Python's heap, which holds everything the exporter keeps (rows, JSON,
  the deduplication filter's numpy arrays), traced by ``tracemalloc``: the same
  peak within 3 MB. Whether a batch of 2,000 rows read ahead is alive at the
  peak or not moves it by up to 3 MB from one export to the next. Deduplication
  is on, as by default; keeping 100 bytes for each kto row written would peak
  6 MB higher at the larger size.
* the whole process's peak resident set (``/proc/self/clear_refs`` resets it),
  which also counts what the database driver and SQLite allocate outside
  Python. SQLite's sorts and temporary tables take 3 to 6 MB more for the
  bigger file, depending on how the thread that opens the next source overlaps
  the current one, so the bound is 12 MB there and 4 MB on PostgreSQL, whose
  work happens in its own process (one export's peak there varies by 2 to 4 MB
  from the next one's); a driver holding a result set whole would exceed it.

The exporter reads SQLite with a page cache of its own, 4 MB
(``EXPORT_CACHE_KIB``): the store's 32 MB cache would fill as the file grows.

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
import json, sys, tracemalloc
from tuneback.export import export_dataset
from tuneback.storage import Store

def peak_rss():
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith("VmHWM:"))

url, out = sys.argv[1:3]
result = {}
with Store(url, migrate_schema=False) as store:
    for fmt in ("kto", "dpo"):
        export_dataset(store, format=fmt, output=out, force=True)
        peaks = []
        for _ in range(2):
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # resets VmHWM to the current resident set
            summary = export_dataset(store, format=fmt, output=out, force=True)
            peaks.append(peak_rss())
        rss = min(peaks)
        heaps = []
        for _ in range(2):
            tracemalloc.start()
            export_dataset(store, format=fmt, output=out, force=True)
            heaps.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        heap = min(heaps)
        result[fmt] = (summary.rows_written, rss, heap)
print(json.dumps(result))
"""


def export_memory(url: str, out: Path) -> dict[str, tuple[int, int, int]]:
    """(rows written, peak resident bytes, peak Python heap bytes) for kto and dpo."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, url, str(out)], check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (int(rows), int(rss), int(heap)) for name, (rows, rss, heap) in result.items()}


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
        (_, small_rss, small_heap), (_, large_rss, large_heap) = small[fmt], large[fmt]
        assert large_heap - small_heap < 3 << 20, (fmt, "Python heap", small_heap, large_heap)
        bound = (12 if database_url.startswith("sqlite") else 4) << 20
        assert large_rss - small_rss < bound, (fmt, "resident set", small_rss, large_rss)
