"""Users and conversations of windows with a start, counted from each value's days.

Every count is checked against the stored runs, counted here in plain Python, and
the days and returns against the same tables computed from the runs, after runs
that arrive out of order (back-dated, in batches of mixed days), retractions and
forgetting people; then against a recount and the migration's backfill.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from tests.analytics.counting import assert_counts_match_the_runs, stored_runs, table_rows
from tests.analytics.seed import START, seed
from tuneback.domain import ChatMessage, FeedbackRetracted, Run, RunCompleted
from tuneback.storage import Store, migrate, rollups
from tuneback.storage import tables as t
from tuneback.storage.analytics import Window

RAGGED = START + timedelta(days=1, hours=3, minutes=17)
LAST = START + timedelta(days=12)


def _windows() -> list[Window]:
    day = timedelta(days=1)
    return [
        # Ragged at both ends, with whole hours and days between.
        Window("seeded", since=RAGGED, until=RAGGED + timedelta(days=5, hours=7, minutes=2)),
        Window("seeded", since=RAGGED, until=RAGGED + 6 * day, model="beta"),
        Window("seeded", since=RAGGED - 1 * day, until=RAGGED + 9 * day, model="gamma"),
        # Ending late in a day that has runs after the end.
        Window("seeded", since=RAGGED, until=START + timedelta(days=7, hours=20, minutes=11)),
        Window(
            "seeded",
            since=START + timedelta(days=2, hours=22),
            until=START + timedelta(days=9, hours=21, minutes=30),
            model="beta",
        ),
        # Starting early in a day that has runs before the start.
        Window("seeded", since=START + timedelta(days=2, hours=1, minutes=5), until=LAST),
        Window(
            "seeded",
            since=START + timedelta(days=3, hours=4, minutes=40),
            until=START + timedelta(days=10, hours=2, minutes=10),
        ),
        Window(
            "seeded",
            since=START + timedelta(days=1, hours=2),
            until=START + timedelta(days=8, hours=1, minutes=30),
            model="gamma",
        ),
        # Whole days only, then a start at midnight with a ragged end.
        Window("seeded", since=START + day, until=START + 8 * day),
        Window("seeded", since=START + 2 * day, until=START + 4 * day + timedelta(minutes=9)),
        # A start and no end; a window inside one day; one after everything.
        Window("seeded", since=RAGGED + 3 * day),
        Window("seeded", since=RAGGED + 3 * day, model="alpha"),
        Window("seeded", since=RAGGED, until=RAGGED + timedelta(hours=20)),
        Window("seeded", since=LAST + 2 * day, until=LAST + 9 * day),
        # The last days, as the dashboard asks for them.
        Window("seeded", since=LAST - 7 * day + timedelta(minutes=41), until=LAST),
    ]


def _days(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return table_rows(store, t.rollup_days, t.rollup_returns)


def _days_of_the_runs(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Both tables as they should be, computed from the stored runs."""
    days: dict[tuple[str, str, bool, str], set[datetime]] = defaultdict(set)
    for run in stored_runs(store):
        day = run["ran_at"].replace(hour=0, minute=0, second=0, microsecond=0)
        for dim, value in (("conversation", run["conversation_id"]), ("user", run["user"])):
            if value:
                for scope in ((False, run["model"] or ""), (True, "")):
                    days[(dim, value, *scope)].add(day)
    returns: dict[tuple[str, bool, str, datetime, datetime], int] = defaultdict(int)
    for (dim, _, every_model, model), ran in days.items():
        ordered = sorted(ran)
        for n, day in enumerate(ordered):
            returns[(dim, every_model, model, day, ordered[n - 1] if n else day)] += 1
    return {
        "rollup_days": sorted(
            ("seeded", dim, value, every_model, model, day)
            for (dim, value, every_model, model), ran in days.items()
            for day in ran
        ),
        "rollup_returns": sorted(("seeded", *key, n) for key, n in returns.items()),
    }


def _assert_days_are_right(store: Store) -> None:
    kept = _days(store)
    assert kept == _days_of_the_runs(store)
    with store.engine.begin() as conn:
        rollups.rebuild(conn)
    assert _days(store) == kept


def _scattered(rng: random.Random, n: int) -> list[Run]:
    """Runs over twelve days, some users and conversations skipping days, a few back-dated."""
    runs = []
    for k in range(n):
        ran_at = START + timedelta(minutes=rng.randrange(12 * 24 * 60))
        back_dated = rng.random() < 0.1
        runs.append(
            Run(
                project="seeded",
                conversation_id=f"conversation-{rng.randrange(25)}",
                user=rng.choice(("ann", "bob", "eve", "fay", "gus", None)),
                model=rng.choice(("alpha", "beta", "gamma", None)),
                inputs=[ChatMessage(role="user", content=f"scattered {k}")],
                started_at=ran_at if back_dated else None,
                created_at=ran_at + timedelta(days=3) if back_dated else ran_at,
            )
        )
    return runs


def test_window_counts_match_the_runs_through_every_change(store: Store) -> None:
    rng = random.Random(11)
    seeded = seed(store, runs=300)
    # Out of order: batches of runs from any of the days, the later days first.
    scattered = _scattered(rng, 240)
    scattered.sort(key=lambda run: -(run.started_at or run.created_at).timestamp())
    rng.shuffle(scattered[:80])
    for start in range(0, len(scattered), 30):
        store.append_many(RunCompleted(run=run) for run in scattered[start : start + 30])
    for run in _scattered(rng, 20):
        store.append(RunCompleted(run=run))
    # A conversation that only runs late on a day, after a window that ends that day.
    late = Run(
        project="seeded",
        conversation_id="conversation-late",
        user="ann",
        model="beta",
        inputs=[ChatMessage(role="user", content="late")],
        created_at=START + timedelta(days=7, hours=23),
    )
    # And one that only runs early on a day, before a window that starts that day.
    early = Run(
        project="seeded",
        conversation_id="conversation-early",
        user="ann",
        model="alpha",
        inputs=[ChatMessage(role="user", content="early")],
        created_at=START + timedelta(days=3, hours=1),
    )
    store.append_many([RunCompleted(run=late), RunCompleted(run=early)])
    assert_counts_match_the_runs(store, _windows())
    _assert_days_are_right(store)

    # A day filled in between two days a value ran, and a value's first day moved back.
    between = Run(
        project="seeded",
        conversation_id="conversation-3",
        user="hal",
        model="alpha",
        inputs=[ChatMessage(role="user", content="between")],
        started_at=START + timedelta(days=5, hours=2),
        created_at=LAST,
    )
    earliest = Run(
        project="seeded",
        conversation_id="conversation-4",
        user="eve",
        model="beta",
        inputs=[ChatMessage(role="user", content="early")],
        started_at=START - timedelta(days=2),
        created_at=LAST,
    )
    store.append_many([RunCompleted(run=between), RunCompleted(run=earliest)])
    assert_counts_match_the_runs(store, _windows())
    _assert_days_are_right(store)

    current = seeded.current_feedback()
    store.append_many(
        FeedbackRetracted(project="seeded", feedback_id=fb.id, user=fb.user) for fb in current[::3]
    )
    store.forget_user("bob", project="seeded")
    store.forget_user("eve", project="seeded")
    assert_counts_match_the_runs(store, _windows())
    _assert_days_are_right(store)


def test_forgetting_everyone_leaves_no_days(store: Store) -> None:
    seed(store, runs=80)
    for run in _scattered(random.Random(5), 40):
        store.append(RunCompleted(run=run))
    for user in ("ann", "bob", "cyd", "dee", "eve", "fay", "gus"):
        store.forget_user(user, project="seeded")
    runs_left = stored_runs(store)
    days = _days(store)
    # Runs without a user keep only their conversations' days.
    assert {row[1] for row in days["rollup_days"]} <= {"conversation"}
    assert days == _days_of_the_runs(store)
    assert all(run["user"] is None for run in runs_left)


def test_the_migration_finds_the_days_of_what_was_stored(store: Store) -> None:
    seed(store, runs=200)
    for run in _scattered(random.Random(3), 60):
        store.append(RunCompleted(run=run))
    kept = _days(store)
    migrate.downgrade(store.engine, "0016")
    migrate.upgrade(store.engine)
    assert _days(store) == kept
    assert kept == _days_of_the_runs(store)
