"""What a rating costs on an answer that already has many, against one on a fresh answer.

A rating keeps the dashboard's rollups exact in its own transaction. Its cost
must not grow with the ratings its answer already holds: a popular answer rated
by thousands of people is rated as fast as a new one. For each database this
seeds one answer with --held ratings (one per person, as many people would give
them) and --fresh answers with none, then times --ratings new ratings from
--threads threads through the store's write path (group commit), twice: all on
the popular answer, then spread over the fresh ones (the baseline, measured in
the same run). Every rating comes from a new person, so none replaces another;
a third pass re-rates the popular answer as people who already rated it, so
each rating replaces one.

    python bench/bench_ratings.py [--held 20000] [--ratings 3000] [--threads 16]
                                  [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time

from targets import stores
from tuneback.domain import ChatMessage, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.storage import Store

PROJECT = "ratings"


def answer() -> Run:
    return Run(
        project=PROJECT,
        model="echo",
        inputs=[ChatMessage(role="user", content="How do I boil an egg?")],
        output="Eight minutes in boiling water.",
        latency_ms=40.0,
        tags=["cooking"],
    )


def thumbs(run: Run, person: str, n: int) -> FeedbackRecorded:
    score = float(n % 3 != 0)
    return FeedbackRecorded(
        feedback=Feedback(
            project=PROJECT,
            run_id=run.id,
            key="thumbs",
            value="up" if score else "down",
            score=score,
            user=person,
        )
    )


def timed(store: Store, ratings: list[FeedbackRecorded], threads: int) -> float:
    """Ratings per second, ``threads`` callers each appending its share one by one."""
    shares = [ratings[k::threads] for k in range(threads)]

    def rate(share: list[FeedbackRecorded]) -> None:
        for rating in share:
            store.append(rating)

    workers = [threading.Thread(target=rate, args=(share,)) for share in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(ratings) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=20_000, help="ratings the popular answer holds")
    parser.add_argument("--ratings", type=int, default=3_000, help="ratings timed per pass")
    parser.add_argument("--fresh", type=int, default=200, help="answers with no rating yet")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    print(
        f"{args.ratings} ratings from {args.threads} threads; the popular answer holds "
        f"{args.held:,} ratings before they start"
    )
    print("| database | fresh answers (baseline) | popular answer | × | re-rating it | × |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for dialect, store in stores(only=args.only):
        popular, fresh = answer(), [answer() for _ in range(args.fresh)]
        store.append_many(RunCompleted(run=run) for run in [popular, *fresh])
        held = (thumbs(popular, f"held-{n}", n) for n in range(args.held))
        while batch := list(itertools.islice(held, 1_000)):
            store.append_many(batch)
        # As the database's own statistics would be by the time an answer is
        # this popular (PostgreSQL's autovacuum analyses a table that grew).
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        # A short warm-up, so the first pass does not pay for compiling statements.
        timed(store, [thumbs(run, f"warm-{n}", n) for n, run in enumerate(fresh)], args.threads)

        n, k = args.ratings, args.threads
        baseline = timed(store, [thumbs(fresh[i % len(fresh)], f"new-{i}", i) for i in range(n)], k)
        on_popular = timed(store, [thumbs(popular, f"popular-{i}", i) for i in range(n)], k)
        re_rated = timed(store, [thumbs(popular, f"held-{i % args.held}", i) for i in range(n)], k)
        print(
            f"| {dialect} | {baseline:,.0f}/s | {on_popular:,.0f}/s | "
            f"{on_popular / baseline:.2f} | {re_rated:,.0f}/s | {re_rated / baseline:.2f} |"
        )


if __name__ == "__main__":
    main()
