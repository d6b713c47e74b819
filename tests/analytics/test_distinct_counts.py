"""Users and conversations of windows since the start, counted from first days.

Every count is checked against the stored runs, counted here in plain Python,
and the first days against a recount, after new runs, a run back-dated before
its conversation's first day, retractions and forgetting people.
"""

from __future__ import annotations

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


def _windows() -> list[Window]:
    return [
        Window("seeded"),
        Window("seeded", model="beta"),
        Window("seeded", until=RAGGED),
        Window("seeded", until=RAGGED, model="gamma"),
        Window("seeded", until=START + timedelta(days=2)),  # ends at midnight: no partial day
        Window("seeded", until=START + timedelta(hours=2, minutes=5)),  # inside the first day
        Window("seeded", until=START - timedelta(days=1)),  # before everything
    ]


def _firsts(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return table_rows(store, t.rollup_firsts, t.rollup_newcomers)


def _firsts_of_the_runs(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Both tables as they should be, computed from the stored runs."""
    first: dict[tuple[str, str, bool, str], datetime] = {}
    for run in stored_runs(store):
        day = run["ran_at"].replace(hour=0, minute=0, second=0, microsecond=0)
        for dim, value in (("conversation", run["conversation_id"]), ("user", run["user"])):
            if not value:
                continue
            for scope in ((False, run["model"] or ""), (True, "")):
                key = (dim, value, *scope)
                first[key] = min(first.get(key, day), day)
    newcomers: dict[tuple[str, bool, str, datetime], int] = defaultdict(int)
    for (dim, _, every_model, model), day in first.items():
        newcomers[(dim, every_model, model, day)] += 1
    return {
        "rollup_firsts": sorted(("seeded", *key, day) for key, day in first.items()),
        "rollup_newcomers": sorted(("seeded", *key, n) for key, n in newcomers.items()),
    }


def _assert_firsts_are_right(store: Store) -> None:
    kept = _firsts(store)
    assert kept == _firsts_of_the_runs(store)
    with store.engine.begin() as conn:
        rollups.rebuild(conn)
    assert _firsts(store) == kept


def test_counts_since_the_start_match_the_runs_through_every_change(store: Store) -> None:
    seeded = seed(store, runs=300)
    assert_counts_match_the_runs(store, _windows())
    _assert_firsts_are_right(store)

    # A run that happened before its conversation's first day moves that day back,
    # and one in a new conversation on the last partial day is a newcomer there.
    first = seeded.runs[40]
    backdated = Run(
        project="seeded",
        conversation_id=first.conversation_id,
        user=first.user,
        model="delta",
        inputs=[ChatMessage(role="user", content="early")],
        started_at=START - timedelta(days=3),
        created_at=START + timedelta(days=2),
    )
    late = Run(
        project="seeded",
        conversation_id="conversation-late",
        user="zed",
        model="beta",
        inputs=[ChatMessage(role="user", content="late")],
        created_at=RAGGED - timedelta(minutes=3),
    )
    store.append_many([RunCompleted(run=backdated), RunCompleted(run=late)])
    assert_counts_match_the_runs(store, _windows())
    _assert_firsts_are_right(store)

    current = seeded.current_feedback()
    store.append_many(
        FeedbackRetracted(project="seeded", feedback_id=fb.id, user=fb.user) for fb in current[::3]
    )
    store.forget_user("bob", project="seeded")
    store.forget_user("zed", project="seeded")
    assert_counts_match_the_runs(store, _windows())
    _assert_firsts_are_right(store)


def test_forgetting_everyone_leaves_no_first_days(store: Store) -> None:
    seed(store, runs=80)
    for user in ("ann", "bob", "cyd", "dee"):
        store.forget_user(user, project="seeded")
    assert _firsts(store) == {"rollup_firsts": [], "rollup_newcomers": []}


def test_the_migration_finds_the_first_days_of_what_was_stored(store: Store) -> None:
    seed(store, runs=200)
    kept = _firsts(store)
    migrate.downgrade(store.engine, "0013")
    migrate.upgrade(store.engine)
    assert _firsts(store) == kept
    assert kept == _firsts_of_the_runs(store)
