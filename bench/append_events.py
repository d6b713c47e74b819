"""Append rate of the event store against raw SQL inserts of the same rows, same run.

For SQLite and PostgreSQL, this times appending ``run.completed`` events one
transaction each and in batches of 500, and inserting the same rows (the event
and its projection row) with the database driver directly. It prints each rate
and the store's rate as a share of the raw one.

    python bench/append_events.py [--single 2000] [--batched 20000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tuneback.domain import ChatMessage, Run, RunCompleted, dump_payload, new_id
from tuneback.storage import NewEvent, Store
from tuneback.storage.projections import row_of

BATCH = 500


def make_runs(n: int) -> list[Run]:
    return [
        Run(
            project="bench",
            model="echo",
            inputs=[ChatMessage(role="user", content=f"question {i}")],
            output=f"answer {i}",
            latency_ms=12.5,
            prompt_tokens=5,
            completion_tokens=2,
        )
        for i in range(n)
    ]


def plain_rows(runs: list[Run]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each run's event payload and projection row as plain Python data (made before timing)."""
    return [(dump_payload(RunCompleted(run=run)), row_of(run)) for run in runs]


def raw_rows(
    plain: list[tuple[dict[str, Any], dict[str, Any]]], first_seq: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Driver-ready rows: what any program inserting this data has to do (timed)."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    events, projections = [], []
    for offset, (payload, row) in enumerate(plain):
        seq = first_seq + offset
        events.append((seq, new_id(), "run.completed", 1, "bench", now, json.dumps(payload)))
        projections.append(
            (
                row["id"], row["project"], row["run_type"], row["model"],
                json.dumps(row["params"]), json.dumps(row["inputs"]), row["output"],
                row["status"], row["latency_ms"], row["prompt_tokens"],
                row["completion_tokens"], json.dumps(row["tags"]),
                json.dumps(row["metadata"]), now,
            )
        )  # fmt: skip
    return events, projections


EVENT_SQL = (
    "INSERT INTO events (seq, id, type, version, project, recorded_at, payload) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
RUN_SQL = (
    "INSERT INTO runs (id, project, run_type, model, params, inputs, output, status, "
    "latency_ms, prompt_tokens, completion_tokens, tags, metadata, created_at) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)


def raw_insert(connect: Callable[[], Any], param: str, runs: list[Run], batch: int) -> float:
    """Seconds to encode and insert the rows with the driver, ``batch`` rows per transaction."""
    raw_insert.next_seq += len(runs)  # type: ignore[attr-defined]
    plain = plain_rows(runs)
    event_sql, run_sql = EVENT_SQL.format(p=param), RUN_SQL.format(p=param)
    conn = connect()
    started = time.perf_counter()
    events, projections = raw_rows(plain, first_seq=raw_insert.next_seq)  # type: ignore[attr-defined]
    for start in range(0, len(runs), batch):
        cur = conn.cursor()
        cur.executemany(event_sql, events[start : start + batch])
        cur.executemany(run_sql, projections[start : start + batch])
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


raw_insert.next_seq = 10_000_000  # type: ignore[attr-defined]  # clear of the store's numbers


def store_append(store: Store, runs: list[Run], batch: int) -> float:
    started = time.perf_counter()
    if batch == 1:
        for run in runs:
            store.append(RunCompleted(run=run))
    else:
        for start in range(0, len(runs), batch):
            store.append_many(NewEvent(RunCompleted(run=r)) for r in runs[start : start + batch])
    return time.perf_counter() - started


@contextmanager
def sqlite_target() -> Iterator[tuple[str, Callable[[], Any], str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        yield f"sqlite:///{path}", connect, "?"


@contextmanager
def postgres_target(admin_url: str) -> Iterator[tuple[str, Callable[[], Any], str]]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (
            f"{admin_url}?options=-csearch_path%3D{schema}",
            lambda: psycopg.connect(admin_url, options=f"-csearch_path={schema}"),
            "%s",
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def measure(name: str, target: Any, single: int, batched: int) -> None:
    with target as (url, connect, param), Store(url) as store:
        shapes = (("1 per transaction", single, 1), (f"{BATCH} per batch", batched, BATCH))
        for label, n, batch in shapes:
            raw_seconds = raw_insert(connect, param, make_runs(n), batch)
            store_seconds = store_append(store, make_runs(n), batch)
            raw_rate, store_rate = n / raw_seconds, n / store_seconds
            print(
                f"{name:10} {label:18} raw SQL {raw_rate:9,.0f}/s   store {store_rate:9,.0f}/s"
                f"   store/raw {store_rate / raw_rate:6.1%}"
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=2_000, help="events appended one by one")
    parser.add_argument("--batched", type=int, default=20_000, help="events appended in batches")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"run.completed events; {args.single} single, {args.batched} batched\n")
    measure("sqlite", sqlite_target(), args.single, args.batched)
    measure("postgresql", postgres_target(args.postgres), args.single, args.batched)


if __name__ == "__main__":
    main()
