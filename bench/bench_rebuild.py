"""Replaying a busy log, SQLite and PostgreSQL: what ``tuneback db rebuild`` does.

The log is what people rating answers leave behind: runs, ratings by several
people, some of them changed, and some retracted later (between 500 and 5,000
ratings later: on a busy server, the next few seconds), appended in groups of
500 as group commit writes them; and a curator who, every 2,000 runs, adds the
last 500 answers to a dataset in one action. The rebuild replays it in pages
into empty tables; the baseline is reading the same pages of the log and
decoding every payload, measured in the same run, which any replay has to do.

    python bench/bench_rebuild.py [--runs 20000] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from targets import stores
from tuneback.domain import (
    ChatMessage,
    Dataset,
    DatasetCreated,
    DatasetItem,
    DatasetItemAdded,
    EventPayload,
    Feedback,
    FeedbackRecorded,
    FeedbackRetracted,
    Run,
    RunCompleted,
    new_id,
)
from tuneback.storage import Store
from tuneback.storage.log import log_pages

START = datetime(2026, 1, 1, tzinfo=UTC)
USERS = [f"user-{n}" for n in range(50)]
GROUP = 500


def busy_log(runs: int, retract_share: float) -> list[EventPayload]:
    """Runs rated by one to three people; a rating is changed now and then, and
    about ``retract_share`` of them are retracted later."""
    rng = random.Random(5)
    curated = Dataset(project="bench", name="curated")
    log: list[EventPayload] = [DatasetCreated(dataset=curated)]
    recent: list[Feedback] = []
    answers: list[Run] = []
    for n in range(runs):
        run = Run(
            project="bench",
            model=("alpha", "beta")[n % 2],
            user=rng.choice(USERS),
            inputs=[ChatMessage(role="user", content=f"question {n}")],
            output=f"answer {n}",
            latency_ms=rng.uniform(50, 900),
            created_at=START + timedelta(seconds=n),
        )
        log.append(RunCompleted(run=run))
        answers.append(run)
        for user in rng.sample(USERS, rng.randint(1, 3)):
            score = float(rng.randrange(2))
            rating = Feedback(
                project="bench",
                run_id=run.id,
                key="thumbs",
                value=str(score),
                score=score,
                user=user,
            )
            log.append(FeedbackRecorded(feedback=rating))
            recent.append(rating)
        if rng.random() < 0.1:
            changed = rng.choice(recent[-20:])
            again = changed.model_copy(update={"id": new_id(), "score": 1.0, "value": "1.0"})
            log.append(FeedbackRecorded(feedback=again))
        if len(recent) > 1_000 and rng.random() < retract_share * 2:
            gone = recent.pop(rng.randrange(max(0, len(recent) - 5_000), len(recent) - 500))
            log.append(FeedbackRetracted(project="bench", feedback_id=gone.id, user=gone.user))
        if n % 2_000 == 1_999:
            log.extend(
                DatasetItemAdded(item=example(curated, answer), new_version=index == 0)
                for index, answer in enumerate(answers[-500:])
            )
    return log


def example(dataset: Dataset, run: Run) -> DatasetItem:
    return DatasetItem(
        dataset_id=dataset.id,
        project=dataset.project,
        inputs=run.inputs,
        output=run.output or "",
        source="run",
        source_run_id=run.id,
    )


def read_log(store: Store) -> int:
    """The baseline: every page of the log read and decoded, as the rebuild reads it."""
    with store.engine.connect() as conn:
        return sum(len(events) for events in log_pages(conn))


def timed(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--retracted", type=float, default=0.1, help="share of ratings retracted")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    log = busy_log(args.runs, args.retracted)
    retractions = sum(isinstance(event, FeedbackRetracted) for event in log)
    items = sum(isinstance(event, DatasetItemAdded) for event in log)
    print(
        f"{len(log):,} events: {args.runs:,} runs, {retractions:,} retractions, "
        f"{items:,} dataset items"
    )
    print("| database | read the log (baseline) | rebuild | events/s | × baseline |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for dialect, store in stores(only=args.only):
        for start in range(0, len(log), GROUP):
            store.append_many(log[start : start + GROUP])
        floor = timed(lambda store=store: read_log(store), args.repeats)
        rebuild = timed(store.rebuild, args.repeats)
        print(
            f"| {dialect} | {floor:.2f} s | {rebuild:.2f} s | {len(log) / rebuild:,.0f} "
            f"| {rebuild / floor:.1f}× |"
        )


if __name__ == "__main__":
    main()
