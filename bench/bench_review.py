"""Review queues on a large project, SQLite and PostgreSQL: counts, next item, task progress.

A bulk loader writes N runs and their ratings straight into the tables, and
reviews of the oldest tenth of the runs in the "every run" queue; then three
queues are made through the event log, which fills their stored membership
(timed: it is also what a rebuild does per queue). Each read is timed against
a plain ``COUNT(*)`` of the project's runs measured in the same run, and
against reading the rule from the runs themselves, as queues did before
membership was stored.

    python bench/bench_review.py [--runs 1000000] [--only sqlite|postgresql]
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

from targets import stores
from tuneback.domain import (
    AnnotationTask,
    AnnotationTaskCreated,
    ChatMessage,
    ReviewQueue,
    ReviewQueueCreated,
    new_id,
)
from tuneback.services.review import ReviewService
from tuneback.storage import Store
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.criteria import run_conditions

START = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = ("alpha", "beta", "gamma", "delta")
CHUNK = 20_000
EVERY = "q-every-run"
REVIEWED_SHARE = 10
"""One run in this many (the oldest) has a review in the "every run" queue."""


def load(store: Store, runs: int) -> None:
    rng = random.Random(1)
    inserts = BulkInserts(store.engine.dialect)
    step = timedelta(days=60) / runs
    written = 0
    while written < runs:
        run_rows, feedback_rows, reviews = [], [], []
        for n in range(written, min(written + CHUNK, runs)):
            run_id = new_id()
            created = START + step * n
            run_rows.append(
                {
                    "id": run_id, "project": "bench", "run_type": "llm",
                    "model": MODELS[n % 4], "user": f"user{n % 500}", "params": {},
                    "inputs": [], "output": f"answer {n}", "status": "ok",
                    "latency_ms": rng.uniform(50, 4000), "tags": [], "metadata": {},
                    "created_at": created,
                }
            )  # fmt: skip
            if n % 3 == 0:
                down = rng.random() < 0.4
                feedback_rows.append(
                    {
                        "id": new_id(), "project": "bench", "run_id": run_id,
                        "conversation_id": None, "key": "thumbs", "kind": "explicit",
                        "score": 0.0 if down else 1.0, "value": None,
                        "comment": "too long" if down and n % 2 == 0 else None,
                        "user": f"user{n % 500}", "source": "end_user", "metadata": {},
                        "created_at": created, "superseded_by": None, "retracted_at": None,
                        "current": True,
                    }
                )  # fmt: skip
            if n < runs // REVIEWED_SHARE:
                reviews.append(
                    {
                        "feedback_id": new_id(), "queue_id": EVERY, "run_id": run_id,
                        "reviewer": f"reviewer{n % 7}", "created_at": created,
                    }
                )  # fmt: skip
        with store.engine.begin() as conn:
            inserts(conn, t.runs, run_rows)
            inserts(conn, t.feedback, feedback_rows)
            inserts(conn, t.review_feedback, reviews)
        written += len(run_rows)
        print(f"\r  loaded {written:,} runs", end="", flush=True)
    print()


def analyze(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def timed(work: Callable[[], Any], repeat: int = 5) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000


def make_queues(store: Store) -> list[ReviewQueue]:
    at = START + timedelta(days=61)
    queues = [
        ReviewQueue(id=EVERY, project="bench", name="every run", keys=["thumbs"], created_at=at),
        ReviewQueue(
            id="q-thumbs-down",
            project="bench",
            name="thumbs-down",
            rule={"key": "thumbs", "max_score": 0},
            keys=["thumbs"],
            reviewers_per_item=2,
            created_at=at,
        ),
        ReviewQueue(
            id="q-comments",
            project="bench",
            name="has a comment",
            rule={"has": "comment"},
            keys=["thumbs"],
            created_at=at,
        ),
    ]
    for queue in queues:
        started = time.perf_counter()
        store.append(ReviewQueueCreated(queue=queue))
        print(f"  queue {queue.name!r} made and filled in {time.perf_counter() - started:.1f} s")
    task = AnnotationTask(
        id="task-1",
        project="bench",
        name="prompts",
        models=["alpha"],
        prompts=[[ChatMessage(role="user", content="hi")]],
        queue_id=EVERY,
        created_at=at,
    )
    store.append(AnnotationTaskCreated(task=task))
    return queues


def measure(dialect: str, store: Store, runs: int) -> None:
    print(f"{dialect}: loading {runs:,} runs")
    load(store, runs)
    queues = make_queues(store)
    analyze(store)
    service = ReviewService(store)
    with store.engine.connect() as conn:
        sizes = {
            q.name: conn.execute(
                select(func.count())
                .select_from(t.review_members)
                .where(t.review_members.c.queue_id == q.id)
            ).scalar_one()
            for q in queues
        }
    print("  members: " + ", ".join(f"{name} {n:,}" for name, n in sizes.items()))

    def baseline() -> None:
        with store.engine.connect() as conn:
            conn.execute(
                select(func.count()).select_from(t.runs).where(t.runs.c.project == "bench")
            ).scalar_one()

    def rule_count(queue: ReviewQueue) -> Callable[[], Any]:
        def work() -> None:
            where = run_conditions(queue.rule.criteria(queue.project))
            with store.engine.connect() as conn:
                conn.execute(select(func.count()).select_from(t.runs).where(*where)).scalar_one()

        return work

    reviewer = iter(range(1_000_000))

    def next_item(queue: ReviewQueue) -> Callable[[], Any]:
        # A new reviewer each time: every call finds and leases a fresh item.
        return lambda: service.next_item(queue.id, f"bench{next(reviewer)}")

    rows: list[tuple[str, Callable[[], Any]]] = [
        ("COUNT(*) of the project's runs (baseline)", baseline)
    ]
    for queue in queues:
        rows += [
            (f"{queue.name}: counts", lambda q=queue: service.reviews.counts(q, START)),
            (f"{queue.name}: next item (lease taken)", next_item(queue)),
            (f"{queue.name}: progress (counts + reviewers)", lambda q=queue: service.progress(q)),
            (f"{queue.name}: first page of items", lambda q=queue: service.items(q.id)),
            (f"{queue.name}: the rule read from the runs", rule_count(queue)),
        ]
    rows.append(
        (
            "task progress (task row + its queue's progress)",
            lambda: (service.progress(EVERY), service.reviews.task_progress("task-1")),
        )
    )
    base = None
    for label, work in rows:
        ms = timed(work)
        base = base or ms
        print(f"  {label:52} {ms:9.1f} ms   ×{ms / base:6.1f} of the baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for dialect, store in stores(args.postgres, args.only):
        measure(dialect, store, args.runs)


if __name__ == "__main__":
    main()
