"""The outbox relay into NATS JetStream: throughput, and lag from commit to a consumer.

Throughput, for SQLite and PostgreSQL: a store is filled with ``--events``
``run.completed`` events (appended in batches of 500: the store's own write
rate), then one relay publishes the whole log into a new stream. Baselines from
the same run: the store's batched write rate, and publishing the same messages
with nats-py alone (no database read, no position writes: the ceiling).

Lag: ``tuneback relay`` runs as its own process while 1, 2 and 4 writer
processes append a paced chat + feedback load (a ``run.completed`` then a
``feedback.recorded`` on it, one event per call, ``--rate`` events/s in all);
then the relay runs inside ``tuneback serve --workers 1, 2, 4`` (PostgreSQL)
while 4 HTTP clients chat through the OpenAI-compatible proxy and rate each
answer by its feedback link. A JetStream consumer in this process measures,
for every message, the time from the event's ``recorded_at`` (taken inside
the commit, just before it) to its arrival. Prints p50 / p99 / max in ms.

    python bench/bench_stream.py [--events 20000] [--rate 400] [--seconds 6]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--nats nats://127.0.0.1:4222]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import psycopg

from tuneback.domain import ChatMessage, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.storage import NewEvent, Store
from tuneback.stream import StreamTarget, lease_and_relay
from tuneback.stream.subjects import encode_message, subject_for

ROOT = Path(__file__).resolve().parents[1]
BATCH = 500
CLIENTS = 4


def run_event(i: int) -> RunCompleted:
    return RunCompleted(
        run=Run(
            project="bench",
            model="echo",
            inputs=[ChatMessage(role="user", content=f"question {i}")],
            output=f"answer {i}",
            latency_ms=12.5,
        )
    )


@contextmanager
def database(kind: str, admin_url: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def new_target(nats_url: str) -> StreamTarget:
    tag = uuid.uuid4().hex[:8]
    return StreamTarget(url=nats_url, stream=f"BENCH_{tag}", prefix=f"bench{tag}")


async def drop_stream(target: StreamTarget) -> None:
    nc = await nats.connect(target.url)
    try:
        await nc.jetstream().delete_stream(target.stream)
    finally:
        await nc.close()


async def raw_publish(target: StreamTarget, store: Store) -> float:
    """Publish the log's messages with nats-py alone, as fast as acks come back."""
    events = store.log_after(0, 10_000_000)
    bodies = [(subject_for(target.prefix, e), encode_message(e), e.id) for e in events]
    nc = await nats.connect(target.url)
    js = nc.jetstream(timeout=10)
    await js.add_stream(name=target.stream, subjects=[target.subjects], duplicate_window=600)
    started = time.perf_counter()
    for start in range(0, len(bodies), BATCH):
        futures = [
            await js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id})
            for subject, body, msg_id in bodies[start : start + BATCH]
        ]
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await nc.close()
    return elapsed


def throughput(kind: str, args: argparse.Namespace) -> None:
    with database(kind, args.postgres) as url, Store(url) as store:
        started = time.perf_counter()
        for start in range(0, args.events, BATCH):
            store.append_many(NewEvent(run_event(i)) for i in range(start, start + BATCH))
        write_rate = args.events / (time.perf_counter() - started)
        raw_target, target = new_target(args.nats), new_target(args.nats)
        try:
            raw_rate = args.events / asyncio.run(raw_publish(raw_target, store))
            started = time.perf_counter()
            stats = asyncio.run(lease_and_relay(store, target, asyncio.Event(), once=True))
            relay_rate = stats.published / (time.perf_counter() - started)
        finally:
            asyncio.run(drop_stream(raw_target))
            asyncio.run(drop_stream(target))
    print(
        f"{kind:10} store writes {write_rate:8,.0f}/s   nats-py alone {raw_rate:8,.0f}/s   "
        f"relay {relay_rate:8,.0f}/s   relay/store {relay_rate / write_rate:5.2f}x   "
        f"relay/nats-py {relay_rate / raw_rate:6.1%}"
    )


def writer(url: str, seconds: float, rate: float) -> None:
    """One writer process: a run and a rating on it, one event per call, paced."""
    with Store(url) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        gap, next_at, i = 1 / rate, time.perf_counter(), 0
        end = next_at + seconds
        while next_at < end:
            event = run_event(i) if i % 2 == 0 else None
            if event is not None:
                run_id = store.append(event).payload.run.id  # type: ignore[attr-defined]
            else:
                feedback = Feedback(project="bench", run_id=run_id, key="thumbs", value="up")
                store.append(FeedbackRecorded(feedback=feedback))
            i += 1
            next_at += gap
            time.sleep(max(0.0, next_at - time.perf_counter()))


async def consume(
    target: StreamTarget, seconds: float, lags: list[float], ready: asyncio.Event
) -> None:
    nc = await nats.connect(target.url)
    js = nc.jetstream(timeout=10)
    for _ in range(300):
        try:
            # The relay makes the stream once it is up: writers start after that.
            await js.stream_info(target.stream)
            break
        except Exception:
            await asyncio.sleep(0.1)
    sub = await js.subscribe(target.subjects, stream=target.stream, ordered_consumer=True)
    ready.set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            msg = await sub.next_msg(timeout=0.5)
        except TimeoutError:
            continue
        recorded = datetime.fromisoformat(json.loads(msg.data)["recorded_at"])
        lags.append((datetime.now(UTC) - recorded).total_seconds() * 1000)
    await nc.close()


def lag(kind: str, writers: int, args: argparse.Namespace) -> None:
    with database(kind, args.postgres) as url:
        Store(url).close()
        target = new_target(args.nats)
        relay_command = [sys.executable, "-m", "tuneback", "relay", "--nats-url", target.url]
        relay_command += ["--stream", target.stream, "--subject", target.prefix, "-d", url]
        relay = subprocess.Popen(
            relay_command,
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        per_writer = args.rate / writers
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--writer", url, str(args.seconds), str(per_writer)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(writers)
        ]
        lags: list[float] = []
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"

            async def measure() -> None:
                ready = asyncio.Event()
                task = asyncio.create_task(consume(target, args.seconds + 2, lags, ready))
                await asyncio.wait_for(ready.wait(), 60)
                for proc in procs:
                    assert proc.stdin is not None
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                await task

            asyncio.run(measure())
            for proc in procs:
                proc.wait(30)
        finally:
            relay.terminate()
            relay.wait(15)
            asyncio.run(drop_stream(target))
    report(f"{kind} {writers} writer process(es)", lags, args)


def chat_and_rate(base: str, end: float, gap: float, stop: threading.Event) -> None:
    """One client: a chat answer through the proxy, then a rating by its feedback link, paced."""
    next_at = time.perf_counter()
    with httpx.Client(base_url=base, timeout=30) as http:
        i = 0
        while time.perf_counter() < end and not stop.is_set():
            reply = http.post(
                "/v1/chat/completions",
                json={"model": "echo", "messages": [{"role": "user", "content": f"q{i}"}]},
            )
            if reply.status_code == 200:
                http.post(reply.headers["x-tuneback-feedback-url"], json={"value": "up"})
            i += 1
            next_at += gap
            time.sleep(max(0.0, next_at - time.perf_counter()))


def served_lag(workers: int, args: argparse.Namespace) -> None:
    """Lag with the relay inside tuneback serve --workers N, under HTTP chat + feedback."""
    with database("postgresql", args.postgres) as url:
        Store(url).close()
        target = new_target(args.nats)
        port = 18_000 + workers
        env = {
            **os.environ,
            "TUNEBACK_NATS_URL": target.url,
            "TUNEBACK_NATS_STREAM": target.stream,
            "TUNEBACK_NATS_SUBJECT": target.prefix,
            "TUNEBACK_RATE_LIMIT": "off",
        }
        command = [sys.executable, "-m", "tuneback", "serve", "--workers", str(workers)]
        command += ["--model", "echo", "--no-auth", "--port", str(port), "-d", url]
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        lags: list[float] = []
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            time.sleep(3)  # every worker up and one holding the relay lease

            async def measure() -> None:
                ready = asyncio.Event()
                task = asyncio.create_task(consume(target, args.seconds + 2, lags, ready))
                await asyncio.wait_for(ready.wait(), 60)
                stop = threading.Event()
                end = time.perf_counter() + args.seconds
                # A chat logs a run and its rating a feedback event: two events per
                # round, paced so the clients together offer --rate events/s (they go
                # as fast as they can when the server cannot keep up).
                clients = [
                    threading.Thread(
                        target=chat_and_rate, args=(base, end, CLIENTS * 2 / args.rate, stop)
                    )
                    for _ in range(CLIENTS)
                ]
                for client in clients:
                    client.start()
                await task
                stop.set()
                for client in clients:
                    client.join(30)

            asyncio.run(measure())
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            asyncio.run(drop_stream(target))
    report(f"serve --workers {workers}", lags, args)


def report(label: str, lags: list[float], args: argparse.Namespace) -> None:
    lags.sort()
    if not lags:
        print(f"{label}: no messages arrived")
        return
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"{label:32} {len(lags):6,} events ({len(lags) / args.seconds:4.0f}/s)  "
        f"lag p50 {statistics.median(lags):6.1f} ms   p99 {p99:6.1f} ms   max {lags[-1]:6.1f} ms"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events the relay drains")
    parser.add_argument("--rate", type=float, default=400, help="events/s written for lag")
    parser.add_argument("--seconds", type=float, default=6, help="length of each lag run")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    print(f"relay throughput: {args.events:,} run.completed events, relay pages of 500\n")
    for kind in ("sqlite", "postgresql"):
        throughput(kind, args)
    print(f"\ncommit-to-consumer lag: {args.rate:.0f} events/s of chat + feedback\n")
    lag("sqlite", 1, args)
    for writers in (1, 2, 4):
        lag("postgresql", writers, args)
    print(f"\ncommit-to-consumer lag, relay inside serve (PostgreSQL), {CLIENTS} HTTP clients\n")
    for workers in (1, 2, 4):
        served_lag(workers, args)


if __name__ == "__main__":
    main()
