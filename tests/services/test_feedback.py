"""Feedback rules: scoring, configs, policy, retries and retraction, on both databases."""

from __future__ import annotations

import pytest

from tuneback.domain import (
    ContinuousConfig,
    Conversation,
    ConversationStarted,
    Message,
    MessageAdded,
    Run,
    RunCompleted,
)
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store


@pytest.fixture
def service(store: Store) -> FeedbackService:
    return FeedbackService(store)


def _run(store: Store, project: str = "demo", conversation_id: str | None = None) -> Run:
    run = Run(project=project, output="an answer", conversation_id=conversation_id)
    store.append(RunCompleted(run=run))
    return run


def test_values_are_scored_by_their_key(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    thumbs = service.record(run_id=run.id, key="thumbs", value="👎", user="ann", comment="wrong")
    faces = service.record(run_id=run.id, key="faces", value="🙂", user="ann")
    stars = service.record(run_id=run.id, key="stars", value=5, user="ann")
    assert (thumbs.score, thumbs.kind, thumbs.comment, thumbs.project) == (
        0.0,
        "explicit",
        "wrong",
        "demo",
    )
    assert (faces.score, stars.score) == (0.75, 1.0)
    fix = service.record(run_id=run.id, key="correction", correction="a better answer")
    assert (fix.kind, fix.score) == ("correction", None)
    note = service.record(run_id=run.id, key="comment", comment="nice tone")
    assert note.kind == "comment"


def test_project_configs_are_enforced(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    service.set_config("demo", "quality", {"type": "continuous", "min": 0, "max": 10})
    assert service.config_for("demo", "quality") == ContinuousConfig(min=0, max=10)
    assert service.record(run_id=run.id, key="quality", value=8).score == 0.8
    with pytest.raises(ValidationError, match="between 0 and 10, got 12"):
        service.record(run_id=run.id, key="quality", value=12)
    service.set_config(
        "demo", "verdict", {"type": "categorical", "categories": [{"label": "ok", "score": 1}]}
    )
    with pytest.raises(ValidationError, match="takes one of: ok"):
        service.record(run_id=run.id, key="verdict", value="meh")
    service.set_config("demo", "note", {"type": "freeform"})
    with pytest.raises(ValidationError, match="free-form and takes no score"):
        service.record(run_id=run.id, key="note", score=0.5)
    with pytest.raises(ValidationError, match="invalid feedback config"):
        service.set_config("demo", "bad", {"type": "continuous", "min": 3, "max": 1})


def test_score_and_value_must_agree(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    assert service.record(run_id=run.id, key="thumbs", value="up", score=1.0).score == 1.0
    with pytest.raises(ValidationError, match="does not match value"):
        service.record(run_id=run.id, key="thumbs", value="up", score=0.0)


def test_a_retry_with_the_same_id_is_a_noop(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    first = service.record(run_id=run.id, key="thumbs", value="up", feedback_id="fb-1", user="a")
    again = service.record(run_id=run.id, key="thumbs", value="up", feedback_id="fb-1", user="a")
    assert again == first
    assert len(store.events_after(0, types=["feedback.recorded"])) == 1


def test_locked_projects_refuse_a_second_rating(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    service.configure_project("demo", {"changeable": False})
    service.record(run_id=run.id, key="thumbs", value="up", user="ann")
    with pytest.raises(ConflictError, match="ratings are locked"):
        service.record(run_id=run.id, key="thumbs", value="down", user="ann")
    service.record(run_id=run.id, key="thumbs", value="down", user="bob")


def test_changeable_projects_supersede(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    first = service.record(run_id=run.id, key="thumbs", value="up", user="ann")
    second = service.record(run_id=run.id, key="thumbs", value="down", user="ann")
    assert [f.id for f in store.feedback_for_run(run.id)] == [second.id]
    assert store.get_feedback(first.id).superseded_by == second.id


def test_latest_only_refuses_older_answers(service: FeedbackService, store: Store) -> None:
    conv = Conversation(project="demo")
    store.append(ConversationStarted(conversation=conv))
    old, new = _run(store, conversation_id=conv.id), _run(store, conversation_id=conv.id)
    for run in (old, new):
        store.append(
            MessageAdded(
                message=Message(
                    conversation_id=conv.id,
                    project="demo",
                    role="assistant",
                    content="x",
                    run_id=run.id,
                )
            )
        )
    service.configure_project("demo", {"latest_only": True})
    with pytest.raises(ValidationError, match="only the latest answer"):
        service.record(run_id=old.id, key="thumbs", value="up")
    assert service.record(run_id=new.id, key="thumbs", value="up").score == 1.0


def test_retract(service: FeedbackService, store: Store) -> None:
    run = _run(store)
    given = service.record(run_id=run.id, key="thumbs", value="up", user="ann")
    with pytest.raises(ConflictError, match="only the person"):
        service.retract(given.id, user="bob")
    retracted = service.retract(given.id, user="ann")
    assert retracted.retracted_at is not None
    assert not retracted.current
    assert service.retract(given.id, user="ann") == retracted  # twice is harmless
    assert store.feedback_for_run(run.id) == []


def test_unknown_run(service: FeedbackService) -> None:
    with pytest.raises(NotFoundError, match="no run with id nope"):
        service.record(run_id="nope", key="thumbs", value="up")
