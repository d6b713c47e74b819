"""Stored queue membership equals the rule's own answer, on SQLite and PostgreSQL.

Membership is the runs the rule matches now plus the runs reviewed in the
queue, with each item's count of distinct reviewers; it is checked against
the rule read straight from the runs after every kind of change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.storage.criteria_seed import PROJECT, RUNS, seed_events
from tuneback.domain import (
    ChatMessage,
    FeedbackRetracted,
    ReviewQueue,
    ReviewQueueCreated,
    Run,
    RunCompleted,
)
from tuneback.services.feedback import FeedbackService
from tuneback.services.review import ReviewService
from tuneback.storage import Store, migrate
from tuneback.storage import tables as t
from tuneback.storage.review import ReviewStore

RULES: dict[str, dict[str, Any]] = {
    "comments": {"has": "comment"},
    "corrections": {"has": "correction"},
    "thumbs-down without a correction": {"key": "thumbs", "max_score": 0, "lacks": "correction"},
    "no feedback yet": {"has": "none"},
    "beta": {"model": "beta"},
    "vip": {"tag": "vip"},
    "every run": {},
}


def _queue(name: str, rule: dict[str, Any], **fields: Any) -> ReviewQueue:
    return ReviewQueue(
        id=f"q-{name.replace(' ', '-')}",
        project=PROJECT,
        name=name,
        rule=rule,
        keys=["thumbs"],
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        **fields,
    )


def stored(store: Store, queue_id: str) -> dict[str, tuple[int, bool]]:
    m = t.review_members.c
    query = select(m.run_id, m.reviews, m.done).where(m.queue_id == queue_id)
    with store.engine.connect() as conn:
        return {row.run_id: (row.reviews, row.done) for row in conn.execute(query)}


def expected(store: Store, queue: ReviewQueue) -> dict[str, tuple[int, bool]]:
    """The rule's raw answer plus the runs reviewed here, with their reviewers counted."""
    rf = t.review_feedback.c
    reviewers = (
        select(rf.run_id, func.count(func.distinct(rf.reviewer)))
        .where(rf.queue_id == queue.id)
        .group_by(rf.run_id)
    )
    with store.engine.connect() as conn:
        reviewed = {run_id: int(n) for run_id, n in conn.execute(reviewers)}
    members = set(ReviewStore(store).rule_matches(queue)) | set(reviewed)
    needed = queue.reviewers_per_item
    return {r: (reviewed.get(r, 0), reviewed.get(r, 0) >= needed) for r in members}


def assert_membership_is_the_rule(store: Store) -> None:
    for queue in ReviewStore(store).list_queues(PROJECT):
        assert stored(store, queue.id) == expected(store, queue), queue.name


@pytest.fixture
def queues() -> list[ReviewQueue]:
    return [_queue(name, rule) for name, rule in RULES.items()]


def test_queues_made_before_the_runs_gain_them_as_they_arrive(
    store: Store, queues: list[ReviewQueue]
) -> None:
    store.append_many([ReviewQueueCreated(queue=q) for q in queues])
    for event in seed_events():
        store.append(event)
    assert_membership_is_the_rule(store)
    assert set(stored(store, "q-comments")) == {"noted", "disliked-with-comment"}
    assert set(stored(store, "q-every-run")) == {run.id for run in RUNS}


def test_queues_made_after_the_runs_start_whole(store: Store, queues: list[ReviewQueue]) -> None:
    store.append_many(seed_events())
    store.append_many([ReviewQueueCreated(queue=q) for q in queues])
    assert_membership_is_the_rule(store)
    assert set(stored(store, "q-no-feedback-yet")) == {"untouched"}


def test_feedback_moves_runs_in_and_out_and_reviewed_items_stay(
    store: Store, queues: list[ReviewQueue]
) -> None:
    store.append_many([*seed_events(), *(ReviewQueueCreated(queue=q) for q in queues)])
    feedback = FeedbackService(store)
    # A comment arrives on a run without one: the comments queue gains it and
    # "no feedback yet" loses it.
    note = feedback.record(run_id="untouched", key="note", comment="odd", user="eve")
    assert "untouched" in stored(store, "q-comments")
    assert "untouched" not in stored(store, "q-no-feedback-yet")
    assert_membership_is_the_rule(store)

    # Reviewed in the comments queue, then the comment is retracted: the item
    # stays there with its review; an unreviewed one leaves.
    reviews = ReviewService(store)
    comments = reviews.get("q-comments")
    item = reviews.next_item(comments.id, "rita")
    assert item is not None
    assert item.run.id == "noted"
    reviews.submit(comments.id, "noted", "rita", answers={"thumbs": "up"})
    f = t.feedback.c
    with store.engine.connect() as conn:
        noted_comment = conn.execute(
            select(f.id).where(f.run_id == "noted", f.key == "note")
        ).scalar_one()
    store.append_many(
        [
            FeedbackRetracted(project=PROJECT, feedback_id=noted_comment),
            FeedbackRetracted(project=PROJECT, feedback_id=note.id),
        ]
    )
    assert stored(store, "q-comments") == {"noted": (1, True), "disliked-with-comment": (0, False)}
    assert "untouched" in stored(store, "q-no-feedback-yet")
    assert_membership_is_the_rule(store)


def test_reviewers_are_counted_once_each_and_the_item_completes(store: Store) -> None:
    store.append_many(
        [
            *seed_events(),
            ReviewQueueCreated(queue=_queue("pairs", {"model": "beta"}, reviewers_per_item=2)),
        ]
    )
    reviews = ReviewService(store)
    for reviewer in ("ann", "bob"):
        item = reviews.next_item("q-pairs", reviewer)
        assert item is not None
        assert item.run.id == "failed"
        reviews.submit("q-pairs", "failed", reviewer, answers={"thumbs": "down"}, comment="slow")
        assert_membership_is_the_rule(store)
    assert stored(store, "q-pairs")["failed"] == (2, True)
    counts = ReviewStore(store).counts(reviews.get("q-pairs"), datetime.now(UTC))
    assert (counts.total, counts.pending, counts.needs_more, counts.completed) == (3, 2, 0, 1)
    assert reviews.next_item("q-pairs", "cat").run.id == "untouched"  # type: ignore[union-attr]


def test_a_rebuild_makes_the_same_membership(store: Store, queues: list[ReviewQueue]) -> None:
    store.append_many([ReviewQueueCreated(queue=q) for q in queues[:3]])
    store.append_many(seed_events())
    store.append_many([ReviewQueueCreated(queue=q) for q in queues[3:]])
    reviews = ReviewService(store)
    reviews.next_item("q-beta", "rita")
    reviews.submit("q-beta", "failed", "rita", answers={"thumbs": "down"})
    late = Run(
        project=PROJECT,
        model="beta",
        inputs=[ChatMessage(role="user", content="late")],
        created_at=datetime(2026, 3, 9, tzinfo=UTC) + timedelta(minutes=1),
    )
    store.append(RunCompleted(run=late))
    before = {q.id: stored(store, q.id) for q in queues}
    assert late.id in before["q-beta"]
    store.rebuild()
    assert {q.id: stored(store, q.id) for q in queues} == before
    assert_membership_is_the_rule(store)


def test_the_migration_fills_the_queues_that_were_there(
    store: Store, queues: list[ReviewQueue]
) -> None:
    store.append_many([*seed_events(), *(ReviewQueueCreated(queue=q) for q in queues)])
    reviews = ReviewService(store)
    reviews.next_item("q-no-feedback-yet", "rita")
    reviews.submit("q-no-feedback-yet", "untouched", "rita", answers={"thumbs": "up"})
    before = {q.id: stored(store, q.id) for q in queues}
    assert before["q-no-feedback-yet"] == {"untouched": (1, True)}
    migrate.downgrade(store.engine, "0012")
    migrate.upgrade(store.engine)
    assert {q.id: stored(store, q.id) for q in queues} == before


def test_reviews_stored_before_their_queue_count_when_it_is_made(store: Store) -> None:
    store.append_many(seed_events())
    with store.engine.begin() as conn:
        conn.execute(
            t.review_feedback.insert(),
            [
                {"feedback_id": f"f{n}", "queue_id": "q-vip", "run_id": run_id,
                 "reviewer": reviewer, "created_at": datetime(2026, 3, 5, tzinfo=UTC)}
                for n, (run_id, reviewer) in enumerate(
                    [("liked", "ann"), ("liked", "bob"), ("liked", "ann"), ("noted", "ann")]
                )
            ],
        )  # fmt: skip
    store.append(ReviewQueueCreated(queue=_queue("vip", {"tag": "vip"}, reviewers_per_item=2)))
    assert stored(store, "q-vip") == {
        "liked": (2, True),
        "untouched": (0, False),
        "noted": (1, False),
    }
    assert_membership_is_the_rule(store)
