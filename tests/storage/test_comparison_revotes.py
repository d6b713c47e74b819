"""Re-votes: a comparison naming the one it replaces marks it superseded; rebuild agrees."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.factories import T0
from tests.storage.snapshot import projection_snapshot
from tuneback.domain import (
    Candidate,
    ChatMessage,
    Comparison,
    ComparisonRecord,
    ComparisonRecorded,
    Run,
    RunCompleted,
)
from tuneback.storage import Store, migrate
from tuneback.storage import tables as t

PROMPT = [ChatMessage(role="user", content="Name a colour.")]


def _runs(store: Store) -> tuple[Run, Run]:
    a = Run(id="ra", project="demo", model="red-model", inputs=PROMPT, output="red", created_at=T0)
    b = Run(
        id="rb", project="demo", model="blue-model", inputs=PROMPT, output="blue", created_at=T0
    )
    store.append_many([RunCompleted(run=a), RunCompleted(run=b)])
    return a, b


def _vote(comparison_id: str, outcome: str, minute: int, **extra: object) -> Comparison:
    return Comparison.model_validate(
        {
            "id": comparison_id,
            "project": "demo",
            "prompt": PROMPT,
            "candidates": [Candidate(run_id="ra"), Candidate(run_id="rb")],
            "outcome": outcome,
            "user": "ann",
            "mode": "anonymous",
            "created_at": T0 + timedelta(minutes=minute),
            **extra,
        }
    )


def test_a_revote_marks_the_vote_it_replaces_and_a_rebuild_agrees(store: Store) -> None:
    _runs(store)
    first = _vote("c1", "a", 1)
    second = _vote("c2", "b", 2, supersedes="c1")
    # The third arrives in the same batch as the vote it replaces.
    third = _vote("c3", "tie", 3, supersedes="c2", comment="both fine")
    store.append(ComparisonRecorded(comparison=first))
    store.append_many([ComparisonRecorded(comparison=second), ComparisonRecorded(comparison=third)])

    assert [store.get_comparison(c) for c in ("c1", "c2", "c3")] == [
        ComparisonRecord(**dict(first), superseded_by="c2"),
        ComparisonRecord(**dict(second), superseded_by="c3"),
        ComparisonRecord(**dict(third)),
    ]
    comparisons = t.comparisons.c
    with store.engine.connect() as conn:
        current = conn.execute(
            select(comparisons.id, comparisons.mode, comparisons.outcome).where(
                comparisons.project == "demo", comparisons.superseded_by.is_(None)
            )
        ).all()
    assert [tuple(row) for row in current] == [("c3", "anonymous", "tie")]

    before = projection_snapshot(store)
    assert store.rebuild() == 5
    assert projection_snapshot(store) == before


def test_migration_0009_adds_the_columns_and_keeps_comparisons(database_url: str) -> None:
    with Store(database_url) as store:
        _runs(store)
        store.append(ComparisonRecorded(comparison=_vote("c1", "a", 1, mode=None)))
        migrate.downgrade(store.engine, "0008")
        with store.engine.connect() as conn:
            old = conn.execute(select(t.comparisons.c.id, t.comparisons.c.outcome)).all()
        assert [tuple(row) for row in old] == [("c1", "a")]

        migrate.upgrade(store.engine)
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert store.get_comparison("c1") == ComparisonRecord(
            **dict(_vote("c1", "a", 1, mode=None))
        )
        store.append(ComparisonRecorded(comparison=_vote("c2", "b", 2, supersedes="c1")))
        assert store.get_comparison("c1").superseded_by == "c2"
