"""Dashboard aggregates and a filtered runs page on a large project, SQLite and PostgreSQL.

A bulk loader writes N runs and about 1.5 N current ratings straight into the
tables pages read (the event log is not what these pages query) and counts
their rollups with the same code the projector and ``db rebuild`` use; then this
times each dashboard query and one explorer page, and a plain ``COUNT(*)`` over
the same runs as the baseline measured in the same run. With ``--raw`` each
dashboard query is also timed on the raw tables, as it ran before rollups. With
``--keep`` the seeded stores are kept (a SQLite file in the temporary directory and
a PostgreSQL schema, both named after the size) and a later run with ``--keep``
measures them again without loading (with ``--recount``, after counting their
rollups again, as a change to the rollups needs); drop them with ``--drop``.

    python bench/bench_dashboard.py [--runs 1000000] [--only sqlite|postgresql] [--raw]
                                    [--keep [--recount] | --drop]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from targets import drop_kept, kept_stores, stores
from tuneback.domain import new_id
from tuneback.services.analytics import dashboard
from tuneback.storage import Store, rollups
from tuneback.storage import tables as t
from tuneback.storage.analytics import Analytics, Window
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.queries import Queries, RunFilter

START = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = ("alpha", "beta", "gamma", "delta")
CHUNK = 20_000


def load(store: Store, runs: int) -> None:
    rng = random.Random(1)
    inserts = BulkInserts(store.engine.dialect)
    step = timedelta(days=60) / runs
    written = 0
    while written < runs:
        run_rows, feedback_rows = [], []
        for n in range(written, min(written + CHUNK, runs)):
            run_id = new_id()
            created = START + step * n
            run_rows.append(
                {
                    "id": run_id, "project": "bench", "run_type": "llm",
                    "model": MODELS[n % 4], "user": f"user{n % 500}",
                    "conversation_id": f"c{n // 4}", "params": {}, "inputs": [],
                    "output": f"answer {n}", "status": "error" if n % 50 == 0 else "ok",
                    "error": "timeout" if n % 50 == 0 else None,
                    "latency_ms": rng.uniform(50, 4000), "ttft_ms": rng.uniform(5, 500),
                    "prompt_tokens": rng.randrange(5, 400),
                    "completion_tokens": rng.randrange(1, 600),
                    "tags": [], "metadata": {}, "created_at": created,
                }
            )  # fmt: skip
            for key in ("thumbs", "stars", "faces")[: rng.choice((0, 1, 2, 3))]:
                score = rng.choice((0.0, 1.0)) if key == "thumbs" else rng.randrange(5) / 4
                feedback_rows.append(
                    {
                        "id": new_id(), "project": "bench", "run_id": run_id,
                        "conversation_id": None, "key": key, "kind": "explicit",
                        "score": score, "value": None, "user": f"user{n % 500}",
                        "source": "end_user", "metadata": {}, "created_at": created,
                        "superseded_by": None, "retracted_at": None, "current": True,
                    }
                )  # fmt: skip
        with store.engine.begin() as conn:
            inserts(conn, t.runs, run_rows)
            inserts(conn, t.feedback, feedback_rows)
        written += len(run_rows)
        print(f"\r  loaded {written:,} runs", end="", flush=True)
    print()
    recount(store)


def recount(store: Store) -> None:
    """Count the rollups from the stored runs, as ``db rebuild`` would, then ready the
    tables for reading."""
    started = time.perf_counter()
    with store.engine.begin() as conn:
        rollups.rebuild(conn, "bench")
    print(f"  rollups counted in {time.perf_counter() - started:.1f} s")
    if store.dialect == "postgresql":
        # As autovacuum would by the time anyone reads them: planner statistics, and
        # a visibility map so that index-only scans of the rollups stay index-only.
        with store.engine.connect() as conn:
            vacuum = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in (t.runs, t.feedback, *t.ROLLUPS):
                vacuum.exec_driver_sql(f"VACUUM ANALYZE {table.name}")
    else:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def timed(work: Callable[[], Any], repeat: int = 3) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000


def measure(dialect: str, store: Store, runs: int, raw: bool, recounted: bool = False) -> None:
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    if stored == 0:
        print(f"{dialect}: loading {runs:,} runs")
        load(store, runs)
    elif stored != runs:
        raise SystemExit(f"{dialect}: the kept store holds {stored:,} runs, not {runs:,}")
    elif recounted:
        print(f"{dialect}: recounting the kept store's rollups")
        recount(store)
    else:
        print(f"{dialect}: measuring the kept store")
    with store.engine.connect() as conn:
        feedback = conn.execute(select(func.count()).select_from(t.feedback)).scalar_one()
    print(f"  {runs:,} runs, {feedback:,} feedback rows")
    with store.engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(t.rollups)).scalar_one()
    print(f"  {kept:,} rollup rows")
    with store.engine.connect() as conn:
        days = conn.execute(select(func.count()).select_from(t.rollup_days)).scalar_one()
        returns = conn.execute(select(func.count()).select_from(t.rollup_returns)).scalar_one()
    print(f"  {days:,} days of users and conversations, {returns:,} rows counting them")
    analytics, queries = Analytics(store), Queries(store)
    # Windows end mid-hour, as "now" does, so their ragged edges are read from the runs.
    end = START + timedelta(days=60, minutes=-23)
    week = Window("bench", since=end - timedelta(days=7), until=end)
    day = Window("bench", since=end - timedelta(days=1), until=end)
    # A week asked at noon: both ends cut a day in half, with runs after its end.
    noon = START + timedelta(days=59, hours=12, minutes=7)
    noon_week = Window("bench", since=noon - timedelta(days=7), until=noon)
    everything = Window("bench")

    def baseline() -> None:
        with store.engine.connect() as conn:
            conn.execute(
                select(func.count()).select_from(t.runs).where(t.runs.c.project == "bench")
            ).scalar_one()

    def both(label: str, work: Callable[[Analytics], Any]) -> list[tuple[str, Any]]:
        timed_rows = [(label, lambda: work(analytics))]
        if raw:
            plain = Analytics(store, rollups=False)
            timed_rows.append(("  the same from the raw tables", lambda: work(plain)))
        return timed_rows

    rows = [
        ("COUNT(*) of the project's runs (baseline)", baseline),
        *both("summary, last 7 days", lambda a: a.summary(week)),
        *both("summary, all time", lambda a: a.summary(everything)),
        *both("over time by day, all time", lambda a: a.over_time(everything, "day")),
        *both("over time by hour, last 24 hours", lambda a: a.over_time(day, "hour")),
        *both("split by model, last 7 days", lambda a: a.split(week, "model")),
        *both("summary, 7 days to 12:07", lambda a: a.summary(noon_week)),
        *both("split by model, 7 days to 12:07", lambda a: a.split(noon_week, "model")),
        *both("split by model, all time", lambda a: a.split(everything, "model")),
        *both("ratings by user, all time", lambda a: a.ratings(everything, "user")),
        *both("ratings by tag, all time", lambda a: a.ratings(everything, "tag")),
        *both("per feedback key, all time", lambda a: a.keys(everything)),
        (
            "whole dashboard, 7 days (all its queries)",
            lambda: dashboard(store, project="bench", period="7d", now=end),
        ),
        (
            "whole dashboard, all time",
            lambda: dashboard(store, project="bench", period="all", now=end),
        ),
        (
            "explorer: thumbs-down, newest 50",
            lambda: queries.explore(
                RunFilter(project="bench", score_key="thumbs", max_score=0), limit=50
            ),
        ),
        (
            "explorer: model + no feedback, newest 50",
            lambda: queries.explore(RunFilter(project="bench", model="beta", has="none"), limit=50),
        ),
    ]
    base = None
    for label, work in rows:
        ms = timed(work)
        base = base or ms
        print(f"  {label:44} {ms:9.1f} ms   ×{ms / base:6.1f} of the baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--raw", action="store_true", help="also time the raw-table queries")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", action="store_true", help="keep the seeded stores for next time")
    kept.add_argument("--drop", action="store_true", help="remove the kept stores of this size")
    parser.add_argument(
        "--recount",
        action="store_true",
        help="with --keep: count the kept stores' rollups again (after a change to them)",
    )
    args = parser.parse_args()
    name = f"tuneback_bench_dashboard_{args.runs}"
    if args.drop:
        drop_kept(name, args.postgres, args.only)
        return
    chosen = (
        kept_stores(name, args.postgres, args.only)
        if args.keep
        else stores(args.postgres, args.only)
    )
    for dialect, store in chosen:
        measure(dialect, store, args.runs, args.raw, recounted=args.recount)


if __name__ == "__main__":
    main()
