"""A small project whose runs differ in every way a :class:`RunCriteria` can tell apart.

Each run is named by what makes it stand out, so an expected set of ids reads
as the reason it is right.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    RunFailed,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PROJECT = "demo"
DATASET_ID = "ds-criteria"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _run(run_id: str, hours: float, **fields: object) -> Run:
    data: dict[str, object] = {
        "id": run_id,
        "project": PROJECT,
        "model": "alpha",
        "inputs": [ChatMessage(role="user", content=f"question for {run_id}")],
        "output": f"answer of {run_id}",
        "started_at": at(hours),
        "created_at": at(hours) + timedelta(seconds=2),
    }
    data.update(fields)
    return Run.model_validate(data)


def _feedback(run_id: str, key: str, minutes: float, **fields: object) -> Feedback:
    data: dict[str, object] = {
        "project": PROJECT,
        "run_id": run_id,
        "key": key,
        "user": "ann",
        "created_at": T0 + timedelta(days=1, minutes=minutes),
    }
    data.update(fields)
    return Feedback.model_validate(data)


THUMBS_UP = {"value": "up", "score": 1.0}
THUMBS_DOWN = {"value": "down", "score": 0.0}

RUNS = [
    _run(
        "liked",
        0,
        user="ann",
        conversation_id="conv-1",
        tags=["vip"],
        latency_ms=100.0,
        prompt_tokens=10,
        completion_tokens=5,
        output="Hello world",
    ),
    _run("failed", 1, model="beta", user="bob", status="error", error="timeout", tags=["slow"]),
    _run(
        "noted",
        2,
        user="bob",
        conversation_id="conv-1",
        latency_ms=50.0,
        prompt_tokens=100,
        completion_tokens=100,
    ),
    # No started_at: it ran when it was recorded.
    _run("regenerated", 3, model="gamma", user="ann", started_at=None, latency_ms=300.0),
    _run("corrected", 4, latency_ms=200.0),
    _run("untouched", 5, model="beta", tags=["vip", "slow"], output="Goodbye 100%"),
    _run("changed-mind", 6),
    _run("disliked-with-comment", 7, model="beta"),
    _run("disliked-with-correction", 8),
]
"""Runs of the project, oldest first."""

ELSEWHERE = _run("elsewhere", 0, project="other", tags=["vip"])

RETRACTED_COMMENT = _feedback("changed-mind", "note", 3, kind="comment", comment="meh")

FEEDBACK = [
    _feedback("liked", "thumbs", 1, **THUMBS_UP),
    _feedback("failed", "stars", 1, value=2, score=0.25),
    _feedback("noted", "note", 1, kind="comment", comment="nice"),
    _feedback("regenerated", "regenerated", 1, kind="implicit"),
    _feedback("corrected", "correction", 1, kind="correction", correction="better"),
    _feedback("corrected", "stars", 2, value=4, score=0.75),
    _feedback("changed-mind", "thumbs", 1, **THUMBS_DOWN),
    _feedback("changed-mind", "thumbs", 2, **THUMBS_UP),  # supersedes the thumbs-down
    RETRACTED_COMMENT,
    _feedback("disliked-with-comment", "thumbs", 1, comment="too long", **THUMBS_DOWN),
    _feedback("disliked-with-correction", "thumbs", 1, correction="shorter", **THUMBS_DOWN),
    _feedback("elsewhere", "note", 1, project="other", kind="comment", comment="hi"),
]


def seed_events() -> list[EventPayload]:
    """Every run, its feedback and a dataset made from one of them, in a valid order."""
    events: list[EventPayload] = []
    for run in [*RUNS, ELSEWHERE]:
        events.append(RunFailed(run=run) if run.status == "error" else RunCompleted(run=run))
    events.extend(FeedbackRecorded(feedback=fb) for fb in FEEDBACK)
    events.append(
        FeedbackRetracted(project=PROJECT, feedback_id=RETRACTED_COMMENT.id, retracted_at=at(30))
    )
    dataset = Dataset(id=DATASET_ID, project=PROJECT, name="picked", created_at=at(30))
    events.append(DatasetCreated(dataset=dataset))
    events.append(
        DatasetItemAdded(
            item=DatasetItem(
                dataset_id=DATASET_ID,
                project=PROJECT,
                inputs=[ChatMessage(role="user", content="q")],
                output="a",
                source="correction",
                source_run_id="noted",
                created_at=at(30),
            )
        )
    )
    return events


ALL = {run.id for run in RUNS}
