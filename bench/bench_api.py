"""The API's cost against baselines measured in the same run.

* feedback: one ``POST /api/v1/feedback`` per request (key check, rules, a
  committed write) against a bare FastAPI endpoint that only parses the same
  body, both under uvicorn in a child process, driven by the same client;
* ingest: ``POST /api/v1/ingest`` with batches of 500 runs, in events/s, against
  ``Store.append_many`` of the same batches with no HTTP at all, and against raw
  inserts of the same rows (one plain table, one ``executemany`` and commit per
  batch): the ceiling the issue's "50% of raw" is measured against.

Both on SQLite and PostgreSQL. Prints each rate and the ratio.

    python bench/bench_api.py [--requests 3000] [--concurrency 16] [--batches 40]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tuneback.domain import Run, RunCompleted, new_id
from tuneback.server.api.schemas import FeedbackCreate
from tuneback.services.keys import KeyService
from tuneback.storage import NewEvent, Store

BATCH = 500
HERE = Path(__file__).resolve()


# -- servers in a child process ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/api/v1/feedback", status_code=201)
    def feedback(body: FeedbackCreate) -> dict[str, str]:
        return {"run_id": body.run_id, "key": body.key}

    return app


def serve(kind: str, database_url: str, port: int, upstream: str | None) -> None:
    import uvicorn

    from tuneback.config import Settings
    from tuneback.server import create_app

    if kind == "bare":
        app = bare_app()
    else:
        models: list[Any] = ["echo"]
        if upstream:
            from tuneback.models.openai_compat import create_openai

            models = [create_openai("fake-model", base_url=upstream, max_retries=0)]
        app = create_app(Settings(database_url=database_url), models=models)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextmanager
def child_server(kind: str, database_url: str = "", upstream: str | None = None) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, str(HERE), "serve", kind, database_url or "-", str(port)]
    if upstream:
        argv.append(upstream)
    child = subprocess.Popen(argv)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        child.terminate()
        child.wait(10)


# -- databases ---------------------------------------------------------------------------


@contextmanager
def database(dialect: str, postgres: str) -> Iterator[str]:
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- load ----------------------------------------------------------------------------------


async def hammer(url: str, key: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Requests per second sending ``bodies`` with ``concurrency`` requests in flight."""
    queue = list(reversed(bodies))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        for body in bodies[:20]:  # warm up: connections, caches, the key check
            (await client.post("/api/v1/feedback", json=body)).raise_for_status()

        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await client.post("/api/v1/feedback", json=body)
                if response.status_code != 201:
                    raise RuntimeError(response.text)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - start)


def feedback_bodies(run_ids: list[str], n: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_ids[i % len(run_ids)],
            "key": "thumbs",
            "value": "up" if i % 3 else "down",
            "user": f"user-{i}",
            "comment": "useful answer",
            "metadata": {"screen": "chat"},
        }
        for i in range(n)
    ]


def run_items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "run",
            "id": new_id(),
            "model": "echo",
            "inputs": [{"role": "user", "content": f"question {i}"}],
            "output": f"answer {i}",
            "latency_ms": 12.5,
            "prompt_tokens": 5,
            "completion_tokens": 2,
        }
        for i in range(n)
    ]


def bench_feedback(url: str, dialect: str, requests: int, concurrency: int) -> float:
    with Store(url) as store:
        key = KeyService(store).create("bench").key
        runs = [Run(project="bench", output="answer") for _ in range(50)]
        store.append_many([RunCompleted(run=r) for r in runs])
    bodies = feedback_bodies([r.id for r in runs], requests)
    with child_server("tuneback", url) as server:
        rate = asyncio.run(hammer(server, key, bodies, concurrency))
    print(f"  {dialect:10} POST /api/v1/feedback (committed)  {rate:8.0f} req/s")
    return rate


RAW_COLUMNS = (
    "id",
    "model",
    "inputs",
    "output",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
)


def raw_inserts(store: Store, batches: list[list[dict[str, Any]]]) -> float:
    """Rows/s inserting ``batches`` into a plain table: a commit per batch, JSON as text."""
    import orjson
    from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

    table = Table(
        "bench_raw_runs",
        MetaData(),
        Column("id", String, primary_key=True),
        Column("model", String),
        Column("inputs", Text),
        Column("output", Text),
        Column("latency_ms", Float),
        Column("prompt_tokens", Integer),
        Column("completion_tokens", Integer),
    )
    table.create(store.engine)
    start = time.perf_counter()
    for items in batches:
        rows = [
            {c: orjson.dumps(i[c]).decode() if c == "inputs" else i[c] for c in RAW_COLUMNS}
            for i in items
        ]
        with store.engine.begin() as conn:
            conn.execute(table.insert(), rows)
    return sum(map(len, batches)) / (time.perf_counter() - start)


def bench_ingest(url: str, dialect: str, batches: int) -> None:
    with Store(url) as store:
        key = KeyService(store).create("bench").key
        raw = raw_inserts(store, [run_items(BATCH) for _ in range(batches)])
        direct_batches = [run_items(BATCH) for _ in range(batches)]
        start = time.perf_counter()
        for items in direct_batches:
            store.append_many(
                NewEvent(
                    RunCompleted(
                        run=Run(project="bench", **{k: v for k, v in i.items() if k != "type"})
                    ),
                    i["id"],
                )
                for i in items
            )
        direct = batches * BATCH / (time.perf_counter() - start)
    api_batches = [run_items(BATCH) for _ in range(batches)]
    with child_server("tuneback", url) as server:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server, headers=headers, timeout=60) as client:
            client.post("/api/v1/ingest", json={"items": run_items(BATCH)}).raise_for_status()
            start = time.perf_counter()
            for items in api_batches:
                response = client.post("/api/v1/ingest", json={"items": items})
                if response.status_code != 200:
                    raise RuntimeError(response.text[:500])
            api = batches * BATCH / (time.perf_counter() - start)
    print(
        f"  {dialect:10} ingest batches of {BATCH}: API {api:8.0f} events/s, "
        f"store.append_many {direct:8.0f} events/s ({api / direct:.2f}x), "
        f"raw inserts {raw:8.0f} rows/s ({api / raw:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TUNEBACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="skip the feedback POSTs (bench_http.py drives those with wrk)",
    )
    args = parser.parse_args()
    if not args.ingest_only:
        print(f"feedback POST, {args.requests} requests, {args.concurrency} in flight:")
        with child_server("bare") as server:
            bodies = feedback_bodies(["r"], args.requests)
            bare = asyncio.run(hammer(server, "unused", bodies, args.concurrency))
        print(f"  {'baseline':10} bare FastAPI endpoint parsing the body  {bare:8.0f} req/s")
        for dialect in ("sqlite", "postgresql"):
            with database(dialect, args.postgres) as url:
                rate = bench_feedback(url, dialect, args.requests, args.concurrency)
            print(f"  {dialect:10} ratio to the bare endpoint: {rate / bare:.2f}x")
    print("ingest:")
    for dialect in ("sqlite", "postgresql"):
        with database(dialect, args.postgres) as url:
            bench_ingest(url, dialect, args.batches)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(
            sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None
        )
    else:
        main()
