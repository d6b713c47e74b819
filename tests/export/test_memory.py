"""Memory stays flat as the data grows: exporting 4N runs peaks no higher than exporting N.

Each export runs in a fresh subprocess that reports the peak of Python
allocations (tracemalloc) during the export alone, so the numbers are not
disturbed by the test process or by seeding.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tuneback.domain import ChatMessage, EventPayload, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.storage import Store

pytestmark = pytest.mark.slow

N = 3_000

MEASURE = """
import json, sys, tracemalloc
from tuneback.export import export_dataset
from tuneback.storage import Store
url, out = sys.argv[1:3]
peaks = {}
with Store(url, migrate_schema=False) as store:
    tracemalloc.start()
    for name, fmt, dedup in (("kto", "kto", False), ("dpo", "dpo", False), ("dedup", "kto", True)):
        tracemalloc.reset_peak()
        summary = export_dataset(store, format=fmt, output=out, force=True, dedup=dedup)
        peaks[name] = (summary.rows_written, tracemalloc.get_traced_memory()[1])
print(json.dumps(peaks))
"""


def add_runs(store: Store, start: int, count: int) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[EventPayload] = []
    for i in range(start, start + count):
        run = Run(
            project="mem",
            inputs=[ChatMessage(role="user", content=f"question {i // 2} " + "x" * 200)],
            output=f"answer {i} " + "y" * 200,
            created_at=t0 + timedelta(seconds=i),
        )
        batch.append(RunCompleted(run=run))
        score = 1.0 if i % 2 else 0.0
        feedback = Feedback(project="mem", run_id=run.id, key="thumbs", value=score, score=score)
        batch.append(FeedbackRecorded(feedback=feedback))
        if len(batch) >= 1_000:
            store.append_many(batch)
            batch = []
    store.append_many(batch)


def peaks(url: str, out: Path) -> dict[str, tuple[int, int]]:
    """(rows written, peak bytes) of kto and dpo exports, and of kto with dedup."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, url, str(out)], check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (int(rows), int(peak)) for name, (rows, peak) in result.items()}


def test_peak_memory_does_not_grow_with_row_count(database_url: str, tmp_path: Path) -> None:
    with Store(database_url) as store:
        add_runs(store, 0, N)
        small = peaks(database_url, tmp_path)
        add_runs(store, N, 3 * N)
    large = peaks(database_url, tmp_path)

    assert (small["kto"][0], large["kto"][0]) == (N, 4 * N)
    assert (small["dpo"][0], large["dpo"][0]) == (N // 2, 2 * N)
    for fmt in ("kto", "dpo"):
        # Four times the rows, the same peak (allowing 25% for batch-to-batch noise).
        assert large[fmt][1] < small[fmt][1] * 1.25, (fmt, small[fmt], large[fmt])
    # Deduplication keeps one fingerprint per written row: bounded, documented growth.
    per_row = (large["dedup"][1] - small["dedup"][1]) / (3 * N)
    assert per_row < 200, per_row
