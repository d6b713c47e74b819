"""Export speed and memory at 250k and 1M runs, against a raw driver dump measured in the same run.

Seeds a SQLite store (or the PostgreSQL database given with ``--database-url``)
with runs: pairs of answers to one prompt, each rated with thumbs (so KTO and
DPO both have rows), every tenth one corrected. At each size in ``--sizes`` (the
store grows from one to the next) it times, each in a fresh subprocess so the
peak RSS belongs to that export alone:

* the baseline: ``SELECT id, inputs, output FROM runs`` streamed by the driver
  straight into a JSONL file, one ``json.loads`` and ``json.dumps`` per row;
* ``dpo`` and ``kto`` to JSONL and to Parquet (tuneback.export, deduplicated);

and prints each export's time as a multiple of the baseline's and its peak RSS
(``+`` the second process's, where a big export has one read its second half),
then how much the two peaks together grew from the smallest size to the largest.
``--processes 1,2`` runs each export both ways. ``--progress`` exports as
``tuneback export`` does on a terminal: each source is also counted for its
progress bar (the bar itself is not drawn).

    python bench/bench_export.py [--sizes 250000,1000000 | --runs N] [--database-url URL]
                                 [--keep PATH] [--processes 1,2] [--progress]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tuneback.domain import ChatMessage, EventPayload, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.storage import Store

BATCH = 500


def seed(store: Store, runs: int, start: int = 0) -> float:
    """Append ``runs`` runs (numbered from ``start``) with their feedback; returns seconds taken."""
    started = time.perf_counter()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[EventPayload] = []
    for i in range(start, start + runs, 2):
        prompt = [ChatMessage(role="user", content=f"question {i // 2}: what is {i} + 1?")]
        for j, (output, up) in enumerate(((f"{i + 1}", True), (f"{i + 2}", False))):
            run = Run(
                project="bench",
                model="echo",
                inputs=prompt,
                output=output,
                latency_ms=10.0,
                created_at=t0 + timedelta(milliseconds=i + j),
            )
            batch.append(RunCompleted(run=run))
            batch.append(
                FeedbackRecorded(
                    feedback=Feedback(
                        project="bench",
                        run_id=run.id,
                        key="thumbs",
                        value="up" if up else "down",
                        score=1.0 if up else 0.0,
                        # No user: the store checks only rated-by-user feedback for
                        # an earlier rating to supersede, which seeding does not need.
                        created_at=run.created_at,
                    )
                )
            )
            if not up and i % 10 == 0:
                batch.append(
                    FeedbackRecorded(
                        feedback=Feedback(
                            project="bench",
                            run_id=run.id,
                            key="correction",
                            kind="correction",
                            correction=f"{i + 1}",
                            created_at=run.created_at,
                        )
                    )
                )
        if len(batch) >= BATCH:
            store.append_many(batch)
            batch = []
    store.append_many(batch)
    return time.perf_counter() - started


EXPORT_SCRIPT = """
import json, sys, time
PEAK
from tuneback.export import export_dataset
from tuneback.storage import Store
url, fmt, writer, out, processes, counted = sys.argv[1:7]

class Counted:
    def begin(self, description, total):
        pass

    def advance(self, records):
        pass

second = Second()
with Store(url, migrate_schema=False) as store:
    started = time.perf_counter()
    summary = export_dataset(
        store, format=fmt, output=out, writer=writer, force=True, processes=int(processes),
        progress=Counted() if counted == "1" else None,
    )
    seconds = time.perf_counter() - started
second.stop()
print(json.dumps({"rows": summary.rows_written, "read": summary.records_read, "seconds": seconds,
                  "rss_mb": peak_rss_mb(), "second_rss_mb": second.peak_mb}))
"""
BASELINE_SCRIPT = """
import json, sys, time
PEAK
url, out = sys.argv[1:3]
started = time.perf_counter()
if url.startswith("sqlite"):
    import sqlite3
    conn = sqlite3.connect(url.split("///", 1)[1])
    cursor = conn.execute("SELECT id, inputs, output FROM runs")
    decode = json.loads
else:
    import psycopg
    conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
    cursor = conn.cursor(name="dump")  # a server-side cursor, as the exporter uses
    cursor.itersize = 2000
    cursor.execute("SELECT id, inputs, output FROM runs")
    decode = lambda value: value
rows = 0
with open(out, "w", encoding="utf-8", buffering=1 << 20) as file:
    for run_id, inputs, output in cursor:
        file.write(json.dumps({"id": run_id, "prompt": decode(inputs), "completion": output},
                              ensure_ascii=False))
        file.write("\\n")
        rows += 1
seconds = time.perf_counter() - started
print(json.dumps({"rows": rows, "read": rows, "seconds": seconds,
                  "rss_mb": peak_rss_mb()}))
"""


# VmHWM is this process's own high-water mark; ru_maxrss would include the
# parent's, which a child inherits across fork and exec.
PEAK_RSS = """
import os, pathlib, threading

def peak_rss_mb(status="/proc/self/status"):
    with open(status) as lines:
        line = next(line for line in lines if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

class Second:
    # The highest high-water mark among this process's children: a second export process.

    def __init__(self):
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)
        self._thread.start()

    def _watch(self):
        me = f"PPid:\\t{os.getpid()}\\n"
        while not self._stop.wait(0.05):
            for status in pathlib.Path("/proc").glob("[0-9]*/status"):
                try:
                    if me in status.read_text():
                        self.peak_mb = max(self.peak_mb, peak_rss_mb(status))
                except (OSError, StopIteration):
                    pass  # ended meanwhile

    def stop(self):
        self._stop.set()
        self._thread.join()
"""


def measure(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script.replace("PEAK", PEAK_RSS), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


EXPORTS = (("dpo", "jsonl"), ("kto", "jsonl"), ("dpo", "parquet"), ("kto", "parquet"))


def grow(url: str, size: int) -> None:
    with Store(url) as store:
        existing = store.info()["rows"]["runs"]
        if existing < size:
            seconds = seed(store, size - existing, start=existing)
            print(f"seeded runs {existing:,} to {size:,} in {seconds:.1f} s ({store.dialect})")
            # Fresh statistics, as autovacuum would leave them: plans made for
            # the empty tables would nest loops over a million rows.
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        else:
            print(f"reusing {existing:,} runs ({store.dialect})")


def report(label: str, result: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    rate = result["read"] / result["seconds"]
    ratio = f"  {result['seconds'] / baseline['seconds']:.2f}× the baseline" if baseline else ""
    second = result.get("second_rss_mb")
    second_peak = f" + {second:3.0f} MB" if second else " " * 9
    print(
        f"{label:<30} {result['rows']:>9,} rows {result['seconds']:7.2f} s "
        f"{rate:>10,.0f} records/s  peak RSS {result['rss_mb']:5.0f} MB{second_peak}{ratio}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,1000000", help="run counts, ascending")
    parser.add_argument("--runs", type=int, help="one size only (the same as --sizes N)")
    parser.add_argument("--database-url", help="a database to seed (default: a temp SQLite file)")
    parser.add_argument("--keep", type=Path, help="reuse/keep the SQLite file at this path")
    parser.add_argument(
        "--processes",
        default="2",
        help="export processes, or several to compare in one run (e.g. 1,2)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="count each source for a progress bar, as tuneback export does on a terminal",
    )
    options = parser.parse_args()
    sizes = [options.runs] if options.runs else [int(size) for size in options.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="tuneback-bench-") as scratch:
        work = Path(scratch)
        url = options.database_url or f"sqlite:///{options.keep or work / 'bench.db'}"
        peaks: dict[str, list[float]] = {}
        for size in sizes:
            grow(url, size)
            baseline = measure(BASELINE_SCRIPT, url, str(work / "baseline.jsonl"))
            report("baseline SELECT → JSONL", baseline, None)
            compared = "," in options.processes
            for fmt, writer in EXPORTS:
                for processes in options.processes.split(","):
                    out = str(work / "out")
                    counted = "1" if options.progress else "0"
                    result = measure(EXPORT_SCRIPT, url, fmt, writer, out, processes, counted)
                    label = f"{fmt} → {writer}" + (f" ×{processes}" if compared else "")
                    report(f"export {label}", result, baseline)
                    peak = result["rss_mb"] + result["second_rss_mb"]
                    peaks.setdefault(label, []).append(peak)
        if len(sizes) > 1:
            print(f"peak RSS growth (both processes) from {sizes[0]:,} to {sizes[-1]:,} runs:")
            for label, values in peaks.items():
                print(f"  {label:<18} {values[-1] - values[0]:+6.1f} MB")


if __name__ == "__main__":
    main()
