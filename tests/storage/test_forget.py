"""Forgetting a user: gone from every table, from the log's payloads and from rebuilds.

Two users (and a reviewer) share a project, a dataset and a review queue. Every
text the forgotten one wrote, or that was made from it, carries a marker; after
forgetting, the marker is nowhere in the database (SQLite: nowhere in the file),
the other user's rows are exactly what they were, and a rebuild of the rewritten
log produces exactly the tables the forget left.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from tests.factories import T0
from tests.storage.snapshot import projection_snapshot
from tuneback.domain import (
    AnnotationTask,
    AnnotationTaskCreated,
    Candidate,
    ChatMessage,
    Comparison,
    ComparisonRecorded,
    ContinuousConfig,
    Conversation,
    ConversationEnded,
    ConversationStarted,
    Dataset,
    DatasetCreated,
    DatasetItem,
    DatasetItemAdded,
    DatasetItemRemoved,
    EventForgotten,
    EventPayload,
    Feedback,
    FeedbackConfigSet,
    FeedbackRecorded,
    FeedbackRetracted,
    Message,
    MessageAdded,
    ReviewQueue,
    ReviewQueueCreated,
    Run,
    RunCompleted,
    RunFailed,
)
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.export import FORMATS, export_dataset
from tuneback.storage import NewEvent, Store
from tuneback.storage.engine import Dialect
from tuneback.storage.review import ReviewStore

ALICE, BOB = "alice-q9", "bob-k4"
ALICE_TEXT, BOB_TEXT = "zebra-ALICE-7f3", "walrus-BOB-2c8"
PROJECT = "shop"


@dataclass
class Seeded:
    """What one user left: their events and the ids of the rows they own."""

    events: list[EventPayload] = field(default_factory=list)
    rows: dict[str, set[str]] = field(default_factory=dict)

    def own(self, table_name: str, *ids: str) -> None:
        self.rows.setdefault(table_name, set()).update(ids)


@dataclass(frozen=True)
class Shared:
    dataset: Dataset
    queue: ReviewQueue
    task: AnnotationTask


def shared(project: str = PROJECT) -> Shared:
    queue = ReviewQueue(project=project, name="bad answers", keys=["thumbs"], created_at=T0)
    prompt = [ChatMessage(role="user", content="team prompt")]
    return Shared(
        dataset=Dataset(project=project, name="good answers", created_at=T0),
        queue=queue,
        task=AnnotationTask(
            project=project,
            name="team task",
            models=["echo"],
            prompts=[prompt],
            queue_id=queue.id,
            created_at=T0,
        ),
    )


def user_data(user: str, text: str, common: Shared, *, minute: int = 0) -> Seeded:
    """One user's conversation, runs (one failed, one traced step, one from the SDK),
    ratings (changed, retracted), a comparison, dataset items and what others did to them."""
    project = common.dataset.project
    at = T0 + timedelta(minutes=minute)
    s = Seeded()
    conv = Conversation(
        project=project, user=user, model="echo", title=f"{text} title", started_at=at
    )
    question = Message(
        conversation_id=conv.id, project=project, role="user", content=f"{text} question"
    )
    inputs = [ChatMessage(role="user", content=question.content)]
    answer_run = Run(
        project=project,
        conversation_id=conv.id,
        user=user,
        model="echo",
        inputs=inputs,
        output=f"{text} answer",
        created_at=at + timedelta(seconds=1),
    )
    answer = Message(
        conversation_id=conv.id,
        project=project,
        parent_id=question.id,
        role="assistant",
        content=answer_run.output or "",
        run_id=answer_run.id,
        created_at=at + timedelta(seconds=1),
    )
    # In their conversation but logged without a user, as a proxy might.
    failed = Run(
        project=project,
        conversation_id=conv.id,
        model="other",
        inputs=inputs,
        output=f"{text} partial",
        status="error",
        error="timeout",
        created_at=at + timedelta(seconds=2),
    )
    sdk_run = Run(
        project=project,
        user=user,
        model="echo",
        run_type="chain",
        inputs={"question": f"{text} sdk"},
        output=f"{text} sdk answer",
        tags=[f"task:{common.task.id}"],
        metadata={"annotation_task": common.task.id},
        created_at=at + timedelta(seconds=3),
    )
    step = Run(
        project=project,
        run_type="tool",
        parent_run_id=sdk_run.id,
        inputs={"query": f"{text} step"},
        output=f"{text} step output",
        created_at=at + timedelta(seconds=3),
    )
    first_rating = Feedback(
        project=project, run_id=answer_run.id, key="thumbs", value="up", score=1.0, user=user
    )
    changed = Feedback(
        project=project,
        run_id=answer_run.id,
        key="thumbs",
        value="down",
        score=0.0,
        comment=f"{text} comment",
        user=user,
        created_at=at + timedelta(seconds=4),
    )
    retracted = Feedback(
        project=project, run_id=sdk_run.id, key="stars", value=5, score=1.0, user=user
    )
    correction = Feedback(
        project=project,
        run_id=answer_run.id,
        key="correction",
        kind="correction",
        correction=f"{text} corrected by reviewer",
        user="reviewer",
        source="annotator",
        created_at=at + timedelta(seconds=5),
    )
    reviewed = Feedback(
        project=project,
        run_id=answer_run.id,
        key="thumbs",
        value="down",
        score=0.0,
        user="reviewer",
        source="annotator",
        metadata={"queue_id": common.queue.id},
        created_at=at + timedelta(seconds=6),
    )
    on_conversation = Feedback(
        project=project, conversation_id=conv.id, key="helpful", value=True, score=1.0
    )
    comparison = Comparison(
        project=project,
        prompt=inputs,
        candidates=[Candidate(run_id=answer_run.id), Candidate(run_id=failed.id)],
        outcome="a",
        user=user,
        comment=f"{text} compared",
    )
    item = DatasetItem(
        dataset_id=common.dataset.id,
        project=project,
        inputs=inputs,
        output=f"{text} item",
        source="run",
        source_run_id=answer_run.id,
        created_at=at + timedelta(seconds=7),
    )
    removed_item = DatasetItem(
        dataset_id=common.dataset.id,
        project=project,
        inputs=inputs,
        output=f"{text} removed item",
        source="run",
        source_run_id=sdk_run.id,
        created_at=at + timedelta(seconds=7),
    )
    s.events = [
        ConversationStarted(conversation=conv),
        MessageAdded(message=question),
        RunCompleted(run=answer_run),
        MessageAdded(message=answer),
        RunFailed(run=failed),
        RunCompleted(run=sdk_run),
        RunCompleted(run=step),
        FeedbackRecorded(feedback=first_rating),
        FeedbackRecorded(feedback=changed),
        FeedbackRecorded(feedback=retracted),
        FeedbackRetracted(project=project, feedback_id=retracted.id, user=user),
        FeedbackRecorded(feedback=correction),
        FeedbackRecorded(feedback=reviewed),
        FeedbackRecorded(feedback=on_conversation),
        ComparisonRecorded(comparison=comparison),
        DatasetItemAdded(item=removed_item),
        DatasetItemAdded(item=item),
        DatasetItemRemoved(project=project, dataset_id=item.dataset_id, item_id=removed_item.id),
        ConversationEnded(project=project, conversation_id=conv.id),
    ]
    s.own("conversations", conv.id)
    s.own("messages", question.id, answer.id)
    s.own("runs", answer_run.id, failed.id, sdk_run.id, step.id)
    fb = {first_rating.id, changed.id, retracted.id, correction.id, reviewed.id}
    s.own("feedback", *fb, on_conversation.id)
    s.own("review_feedback", reviewed.id)
    s.own("comparisons", comparison.id)
    s.own("comparison_runs", comparison.id)
    s.own("dataset_items", item.id)
    return s


def rating_of_other(rater: str, text: str, run: Run) -> Feedback:
    return Feedback(
        project=run.project,
        run_id=run.id,
        key="thumbs",
        value="down",
        score=0.0,
        comment=f"{text} on someone else's answer",
        user=rater,
    )


def seed(store: Store) -> tuple[Seeded, Seeded, list[str]]:
    """Alice and Bob in one project, each rating the other once; returns their ids."""
    common = shared()
    store.append_many(
        [
            DatasetCreated(dataset=common.dataset),
            ReviewQueueCreated(queue=common.queue),
            AnnotationTaskCreated(task=common.task),
        ]
    )
    alice = user_data(ALICE, ALICE_TEXT, common)
    bob = user_data(BOB, BOB_TEXT, common, minute=5)
    alice_run = next(e.run for e in alice.events if isinstance(e, RunCompleted))
    bob_run = next(e.run for e in bob.events if isinstance(e, RunCompleted))
    by_alice = rating_of_other(ALICE, ALICE_TEXT, bob_run)
    by_bob = rating_of_other(BOB, BOB_TEXT, alice_run)
    alice.events.append(FeedbackRecorded(feedback=by_alice))
    alice.own("feedback", by_alice.id, by_bob.id)  # Bob's words on Alice's answer go too
    bob.events.append(FeedbackRecorded(feedback=by_bob))
    ids = [e.id for e in store.append_many([*alice.events, *bob.events])]
    reviews = ReviewStore(store)
    reviews.skip(common.queue.id, alice_run.id, "reviewer", T0)
    reviews.skip(common.queue.id, bob_run.id, "reviewer", T0)
    return alice, bob, ids


def without(snapshot: dict[str, list[dict[str, Any]]], gone: Seeded) -> dict[str, Any]:
    """The snapshot with the rows ``gone`` owns taken out, and nothing else changed."""
    key = {"review_feedback": "feedback_id", "comparison_runs": "comparison_id"}
    kept = {
        name: [r for r in rows if r[key.get(name, "id")] not in gone.rows[name]]
        if name in gone.rows
        else rows
        for name, rows in snapshot.items()
    }
    # A removed run leaves the review queues that held it.
    runs = gone.rows.get("runs", set())
    kept["review_members"] = [r for r in kept["review_members"] if r["run_id"] not in runs]
    return kept


def all_text(store: Store) -> str:
    """Every row of every table in the database (not only the ones tuneback knows), as text."""
    with store.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        dump = []
        for name in names:
            rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
            dump.append(f"{name}: {[tuple(r) for r in rows]!r}")
    return "\n".join(dump)


def sqlite_bytes(store: Store) -> bytes:
    path = Path(store.url.database or "")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_forgetting_removes_one_user_and_leaves_the_other_exactly(store: Store) -> None:
    alice, _, _ = seed(store)
    before = projection_snapshot(store)
    log_before = store.events_after(0, limit=10_000)
    assert ALICE_TEXT in all_text(store)

    counts = store.forget_user(ALICE)

    assert counts.as_dict() == {
        "conversations": 1,
        "messages": 2,
        "runs": 4,
        "feedback": 8,
        "comparisons": 1,
        "dataset_items": 1,
        "events": 21,
    }
    after = projection_snapshot(store)
    assert after == without(before, alice)
    dump = all_text(store)
    assert ALICE_TEXT not in dump
    assert ALICE not in dump
    assert BOB_TEXT in dump
    for owned in ("conversations", "messages", "runs", "feedback", "comparisons"):
        assert not [i for i in alice.rows[owned] if i in dump], owned
    if store.dialect == "sqlite":
        raw = sqlite_bytes(store)
        assert ALICE_TEXT.encode() not in raw
        assert BOB_TEXT.encode() in raw

    # The log keeps every place: same seqs, same ids, tombstones where Alice was.
    log = store.events_after(0, limit=10_000)
    assert [(e.seq, e.id, e.project, e.recorded_at) for e in log] == [
        (e.seq, e.id, e.project, e.recorded_at) for e in log_before
    ]
    alice_events = {e.id for e in log_before if e.payload in alice.events}
    alice_events |= {
        e.id
        for e in log_before
        if isinstance(e.payload, FeedbackRecorded)
        and e.payload.feedback.id in alice.rows["feedback"]
    }
    for old, new in zip(log_before, log, strict=True):
        if old.id in alice_events:
            assert isinstance(new.payload, EventForgotten), old.type
            assert new.type == "event.forgotten"
            assert new.payload.was == old.type
        else:
            assert new == old
    assert len(alice_events) == counts.events

    # Replaying the rewritten log gives exactly the tables the forget left.
    assert store.rebuild() == len(log)
    assert projection_snapshot(store) == after
    assert ALICE_TEXT not in all_text(store)


def test_a_follower_carries_on_from_its_cursor(store: Store) -> None:
    seed(store)
    cursor = 10
    ahead = [e.seq for e in store.events_after(cursor, limit=10_000)]
    store.forget_user(ALICE)
    assert [e.seq for e in store.events_after(cursor, limit=10_000)] == ahead
    later = store.append(
        FeedbackConfigSet(project=PROJECT, key="helpful", config=ContinuousConfig(min=1, max=5))
    )
    assert later.seq == ahead[-1] + 1
    assert [e.seq for e in store.events_after(ahead[-1])] == [later.seq]


def test_a_retry_of_a_forgotten_event_is_refused_and_changes_nothing(store: Store) -> None:
    alice, _, ids = seed(store)
    store.forget_user(ALICE)
    tables = projection_snapshot(store)
    log = store.events_after(0, limit=10_000)
    started, question = alice.events[0], alice.events[1]
    with pytest.raises(ConflictError, match="was forgotten at its user's request") as info:
        store.append(question, event_id=ids[1])
    assert info.value.details["id"] == ids[1]
    # Restating a conversation (as every chat turn does) is refused too.
    with pytest.raises(ConflictError, match="was forgotten"):
        store.append_many([NewEvent(started, ids[0], ensure=True)])
    with pytest.raises(ValidationError, match="tombstones are written only by forgetting"):
        store.append(EventForgotten(project=PROJECT, was="message.added"))
    assert store.events_after(0, limit=10_000) == log
    assert projection_snapshot(store) == tables


def test_forgetting_one_project_leaves_the_users_other_projects(store: Store) -> None:
    common = shared("elsewhere")
    store.append(DatasetCreated(dataset=common.dataset))
    store.append_many(user_data(ALICE, BOB_TEXT, common).events)  # BOB_TEXT: must stay
    alice, _, _ = seed(store)
    before = projection_snapshot(store)
    counts = store.forget_user(ALICE, project=PROJECT)
    assert counts.conversations == 1
    assert projection_snapshot(store) == without(before, alice)
    assert ALICE_TEXT not in all_text(store)
    assert store.list_conversations("elsewhere", user=ALICE) != []


def test_a_user_without_data_is_an_error_and_nothing_changes(store: Store) -> None:
    seed(store)
    tables = projection_snapshot(store)
    log = store.events_after(0, limit=10_000)
    with pytest.raises(NotFoundError, match="no data for user 'nobody'"):
        store.forget_user("nobody")
    with pytest.raises(NotFoundError, match="in project elsewhere"):
        store.forget_user(ALICE, project="elsewhere")
    assert projection_snapshot(store) == tables
    assert store.events_after(0, limit=10_000) == log
    store.forget_user(ALICE)
    with pytest.raises(NotFoundError):
        store.forget_user(ALICE)  # forgetting twice finds nothing the second time


@pytest.mark.parametrize("format", list(FORMATS))
def test_exports_after_forgetting_lack_the_user(store: Store, tmp_path: Path, format: str) -> None:
    seed(store)
    before = export_dataset(store, format=format, output=tmp_path / "before")
    store.forget_user(ALICE)
    after = export_dataset(store, format=format, output=tmp_path / "after")
    written = "".join(Path(f.path).read_text() for f in after.files)
    assert ALICE_TEXT not in written
    assert ALICE not in written
    had = "".join(Path(f.path).read_text() for f in before.files)
    assert (BOB_TEXT in written) == (BOB_TEXT in had)


def test_a_write_in_flight_during_the_forget_is_forgotten_too(store: Store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("an SQLite writer holds the database from its first statement")
    alice, _, _ = seed(store)
    alice_run = next(e.run for e in alice.events if isinstance(e, RunCompleted))
    late = Feedback(
        project=PROJECT, run_id=alice_run.id, key="late", comment=f"{ALICE_TEXT} late", user=BOB
    )
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    def queued(n: int) -> None:
        with store.engine.connect() as probe:
            for _ in range(200):
                if probe.execute(waiting).scalar_one() >= n:
                    return
                probe.rollback()
                time.sleep(0.02)
        raise AssertionError(f"{n} transactions never queued at the log's tail")

    results: dict[str, Any] = {}
    with store.engine.connect() as gate:
        gate.begin()
        Dialect.of(gate).hold_log_tail(gate)  # the tail is busy: the forget queues first...
        forget = threading.Thread(target=lambda: results.update(counts=store.forget_user(ALICE)))
        forget.start()
        queued(1)
        # ...then a writer applies its projections and queues behind it.
        write = threading.Thread(
            target=lambda: results.update(late=store.append(FeedbackRecorded(feedback=late)))
        )
        write.start()
        queued(2)
        gate.commit()
    forget.join(timeout=30)
    write.join(timeout=30)

    assert results["counts"].feedback == 9
    assert results["counts"].events == 22
    assert ALICE_TEXT not in all_text(store)
    assert store.get_event(results["late"].id).type == "event.forgotten"


def test_feedback_that_came_before_the_run_it_rates_is_forgotten_with_it(store: Store) -> None:
    early = Feedback(
        project=PROJECT, run_id="late-run", key="thumbs", value="up", score=1.0, user=BOB
    )
    run = Run(id="late-run", project=PROJECT, user=ALICE, output=f"{ALICE_TEXT} late")
    rating, _ = store.append_many([FeedbackRecorded(feedback=early), RunCompleted(run=run)])
    counts = store.forget_user(ALICE)
    assert (counts.runs, counts.feedback, counts.events) == (1, 1, 2)
    assert store.get_event(rating.id).type == "event.forgotten"
    assert ALICE_TEXT not in all_text(store)
