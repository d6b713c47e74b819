"""The leaderboard at a million comparisons: the statistics, then the read from each database.

Part one simulates N battles among 20 models in memory and times the board's
math: tallying the battles, the Bradley–Terry fit and 1,000 bootstrap rounds
(without and with style control), and Elo in vote order. The baseline is one
``np.bincount`` over the same battles: the least any pass over them costs.

Part two bulk-loads N comparisons (2 N runs) into the tables the board reads and
times the storage read of every counted battle, then the whole ``leaderboard()``
call the page and the CLI make; the baseline is a ``COUNT(*)`` of the project's
comparisons.

    python bench/bench_leaderboard.py [--comparisons 1000000] [--only sqlite|postgresql]
        [--math-only]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select

from targets import stores
from tuneback.domain import new_id
from tuneback.services import pairwise
from tuneback.services.leaderboard import LeaderboardQuery, leaderboard
from tuneback.storage import Store
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.leaderboard import BattleFilter, BattleReader

MODELS = 20
START = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK = 20_000
OUTCOMES = ("a", "b", "tie", "both_bad")


def timed(work: Callable[[], Any], repeat: int = 3) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000


def simulated(n: int) -> pairwise.Battles:
    rng = np.random.default_rng(1)
    strength = rng.normal(0, 0.6, MODELS)
    a = rng.integers(0, MODELS, n)
    b = (a + rng.integers(1, MODELS, n)) % MODELS
    len_a = rng.integers(50, 1500, n).astype(np.float64)
    len_b = rng.integers(50, 1500, n).astype(np.float64)
    style = 0.4 * (len_a - len_b) / (len_a + len_b)
    p_a = 1 / (1 + np.exp(-(strength[a] - strength[b] + style)))
    roll = rng.random(n)
    outcome = np.where(roll < 0.1, 2, np.where(roll < 0.15, 3, np.where(rng.random(n) < p_a, 0, 1)))
    return pairwise.Battles(
        [f"model-{i:02d}" for i in range(MODELS)], a, b, outcome.astype(np.int64), len_a, len_b
    )


def measure_math(n: int) -> None:
    print(f"math: {n:,} battles, {MODELS} models, 1,000 bootstrap rounds")
    battles = simulated(n)

    def board(style: bool) -> None:
        tally = pairwise.tally(battles, style=style)
        pairwise.fit(tally)
        pairwise.bootstrap(tally, rounds=1000)

    rows = [
        ("np.bincount over the outcomes (baseline)", lambda: np.bincount(battles.outcome)),
        ("tally into cells", lambda: pairwise.tally(battles)),
        ("tally + fit + 1,000 bootstrap rounds", lambda: board(False)),
        ("the same with style control", lambda: board(True)),
        ("Elo in vote order", lambda: pairwise.elo(battles)),
    ]
    base = None
    for label, work in rows:
        ms = timed(work)
        base = base or ms
        print(f"  {label:44} {ms:9.1f} ms   ×{ms / base:8.1f} of the baseline")


def load(store: Store, n: int) -> None:
    rng = random.Random(1)
    inserts = BulkInserts(store.engine.dialect)
    step = timedelta(days=60) / n
    names = [f"model-{i:02d}" for i in range(MODELS)]
    written = 0
    while written < n:
        runs, comparisons, sides = [], [], []
        for i in range(written, min(written + CHUNK, n)):
            created = START + step * i
            a, b = rng.sample(names, 2)
            pair = []
            for model in (a, b):
                run_id = new_id()
                pair.append(run_id)
                runs.append(
                    {
                        "id": run_id, "project": "bench", "run_type": "llm", "model": model,
                        "params": {}, "inputs": [], "output": "x" * rng.randrange(20, 400),
                        "status": "error" if rng.random() < 0.01 else "ok",
                        "error": None, "tags": [], "metadata": {}, "created_at": created,
                    }
                )  # fmt: skip
            comparison_id = new_id()
            comparisons.append(
                {
                    "id": comparison_id, "project": "bench", "prompt": [],
                    "candidates": [{"run_id": pair[0]}, {"run_id": pair[1]}],
                    "outcome": rng.choice(OUTCOMES), "ranking": None,
                    "user": f"user{i % 500}", "comment": None, "mode": "anonymous",
                    "supersedes": None, "superseded_by": None, "metadata": {},
                    "created_at": created,
                }
            )  # fmt: skip
            sides += [
                {"comparison_id": comparison_id, "run_id": pair[0], "position": 0},
                {"comparison_id": comparison_id, "run_id": pair[1], "position": 1},
            ]
        with store.engine.begin() as conn:
            inserts(conn, t.runs, runs)
            inserts(conn, t.comparisons, comparisons)
            inserts(conn, t.comparison_runs, sides)
        written += len(comparisons)
        print(f"\r  loaded {written:,} comparisons", end="", flush=True)
    print()
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def measure_storage(dialect: str, store: Store, n: int) -> None:
    print(f"{dialect}: loading {n:,} comparisons ({2 * n:,} runs)")
    load(store, n)
    reader = BattleReader(store)

    def baseline() -> None:
        with store.engine.connect() as conn:
            conn.execute(
                select(func.count())
                .select_from(t.comparisons)
                .where(t.comparisons.c.project == "bench")
            ).scalar_one()

    found = reader.read(BattleFilter("bench"))
    print(f"  {len(found):,} battles counted, dropped {found.dropped}")
    rows = [
        ("COUNT(*) of the project's comparisons (baseline)", baseline),
        ("read every counted battle", lambda: reader.read(BattleFilter("bench"))),
        (
            "leaderboard(): read + fit + 1,000 rounds + Elo",
            lambda: leaderboard(store, project="bench", query=LeaderboardQuery()),
        ),
    ]
    base = None
    for label, work in rows:
        ms = timed(work, repeat=1 if base else 3)
        base = base or ms
        print(f"  {label:48} {ms:9.1f} ms   ×{ms / base:6.1f} of the baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--math-only", action="store_true")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    measure_math(args.comparisons)
    if args.math_only:
        return
    for dialect, store in stores(args.postgres, args.only):
        measure_storage(dialect, store, args.comparisons)


if __name__ == "__main__":
    main()
