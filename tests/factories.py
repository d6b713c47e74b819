"""Build realistic event streams for tests: every event type, in a valid order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tuneback.domain import (
    AnnotationTask,
    AnnotationTaskCreated,
    AuditRecorded,
    Candidate,
    ChatMessage,
    Comparison,
    ComparisonRecorded,
    ContinuousConfig,
    Conversation,
    ConversationDeleted,
    ConversationEnded,
    ConversationRenamed,
    ConversationStarted,
    Dataset,
    DatasetCreated,
    DatasetItem,
    DatasetItemAdded,
    DatasetItemRemoved,
    EventPayload,
    Feedback,
    FeedbackConfigSet,
    FeedbackRecorded,
    FeedbackRetracted,
    Message,
    MessageAdded,
    ProjectConfigured,
    ProjectSettings,
    ReviewQueue,
    ReviewQueueCreated,
    Run,
    RunCompleted,
    RunFailed,
    new_id,
)

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def conversation_events(
    n: int = 0, *, project: str = "demo", user: str = "ann", start: datetime = T0
) -> list[EventPayload]:
    """One conversation with two answers (the second regenerated), feedback of every kind,
    a comparison, a dataset item, the conversation's end and project settings: one event
    of each type."""
    at = start + timedelta(minutes=n)
    conv = Conversation(
        project=project, user=user, model="echo", system_prompt="Be brief.", started_at=at
    )
    question = Message(
        conversation_id=conv.id,
        project=project,
        role="user",
        content=f"What is {n} + 1?",
        created_at=at,
    )
    inputs = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content=question.content),
    ]
    first = Run(
        project=project,
        conversation_id=conv.id,
        user=user,
        model="echo",
        params={"temperature": 0.2},
        inputs=inputs,
        output=f"{n + 2}",
        latency_ms=120.5,
        ttft_ms=20.0,
        prompt_tokens=12,
        completion_tokens=3,
        tags=["math"],
        started_at=at,
        created_at=at + timedelta(seconds=1),
    )
    answer = Message(
        conversation_id=conv.id,
        project=project,
        parent_id=question.id,
        role="assistant",
        content=first.output or "",
        run_id=first.id,
        created_at=at + timedelta(seconds=1),
    )
    failed = Run(
        project=project,
        conversation_id=conv.id,
        user=user,
        model="echo",
        inputs=inputs,
        output="par",
        status="error",
        error="upstream timed out",
        created_at=at + timedelta(seconds=2),
    )
    second = Run(
        project=project,
        conversation_id=conv.id,
        user=user,
        model="other",
        inputs=inputs,
        output=f"{n + 1}",
        latency_ms=80.0,
        created_at=at + timedelta(seconds=3),
    )
    sibling = Message(
        conversation_id=conv.id,
        project=project,
        parent_id=question.id,
        role="assistant",
        content=second.output or "",
        run_id=second.id,
        created_at=at + timedelta(seconds=3),
    )
    thumbs_up = Feedback(
        project=project,
        run_id=first.id,
        key="thumbs",
        value="up",
        score=1.0,
        user=user,
        created_at=at + timedelta(seconds=4),
    )
    thumbs_down = Feedback(
        project=project,
        run_id=first.id,
        key="thumbs",
        value="down",
        score=0.0,
        user=user,
        comment="wrong sum",
        created_at=at + timedelta(seconds=5),
    )
    regenerated = Feedback(
        project=project,
        run_id=first.id,
        key="regenerated",
        kind="implicit",
        user=user,
        created_at=at + timedelta(seconds=3),
    )
    correction = Feedback(
        project=project,
        run_id=first.id,
        key="correction",
        kind="correction",
        correction=f"{n + 1}",
        user="reviewer",
        source="annotator",
        created_at=at + timedelta(seconds=6),
    )
    stray = Feedback(
        project=project,
        run_id=second.id,
        key="stars",
        value=4,
        score=0.75,
        user=user,
        created_at=at + timedelta(seconds=7),
    )
    comparison = Comparison(
        project=project,
        prompt=inputs,
        candidates=[
            Candidate(run_id=first.id, model="echo"),
            Candidate(run_id=second.id, model="other"),
        ],
        outcome="b",
        user=user,
        created_at=at + timedelta(seconds=8),
    )
    dataset = Dataset(project=project, name=f"sums-{n}", created_at=at + timedelta(seconds=9))
    item = DatasetItem(
        dataset_id=dataset.id,
        project=project,
        inputs=inputs,
        output=f"{n + 1}",
        source="correction",
        source_run_id=first.id,
        created_at=at + timedelta(seconds=9),
    )
    extra = item.model_copy(update={"id": new_id(), "output": "?"})
    queue = ReviewQueue(
        project=project, name=f"review-{n}", keys=["thumbs"], created_at=at + timedelta(seconds=10)
    )
    task = AnnotationTask(
        project=project,
        name=f"prompts-{n}",
        models=["echo"],
        prompts=[inputs],
        queue_id=queue.id,
        created_at=at + timedelta(seconds=10),
    )
    reviewed = Feedback(
        project=project,
        run_id=first.id,
        key="thumbs",
        value="up",
        score=1.0,
        user="reviewer",
        source="annotator",
        metadata={"queue_id": queue.id},
        created_at=at + timedelta(seconds=11),
    )
    return [
        ConversationStarted(conversation=conv),
        MessageAdded(message=question),
        RunCompleted(run=first),
        MessageAdded(message=answer),
        RunFailed(run=failed),
        RunCompleted(run=second),
        MessageAdded(message=sibling),
        FeedbackRecorded(feedback=regenerated),
        FeedbackRecorded(feedback=thumbs_up),
        FeedbackRecorded(feedback=thumbs_down),
        FeedbackRecorded(feedback=correction),
        FeedbackRecorded(feedback=stray),
        FeedbackRetracted(
            project=project,
            feedback_id=stray.id,
            user=user,
            retracted_at=at + timedelta(seconds=8),
        ),
        ComparisonRecorded(comparison=comparison),
        DatasetCreated(dataset=dataset),
        DatasetItemAdded(item=item),
        DatasetItemAdded(item=extra),
        DatasetItemRemoved(project=project, dataset_id=dataset.id, item_id=extra.id),
        ReviewQueueCreated(queue=queue),
        AnnotationTaskCreated(task=task),
        FeedbackRecorded(feedback=reviewed),
        AuditRecorded(
            action="export",
            actor="cli",
            project=project,
            target="data/",
            details={"format": "dpo", "writer": "jsonl", "rows": 1},
        ),
        ConversationEnded(
            project=project, conversation_id=conv.id, ended_at=at + timedelta(minutes=1)
        ),
        ConversationRenamed(
            project=project,
            conversation_id=conv.id,
            title=f"Sums from {n}",
            renamed_at=at + timedelta(minutes=2),
        ),
        ConversationDeleted(
            project=project, conversation_id=conv.id, deleted_at=at + timedelta(minutes=3)
        ),
        FeedbackConfigSet(
            project=project, key="helpfulness", config=ContinuousConfig(min=1, max=10)
        ),
        ProjectConfigured(
            project=project,
            settings=ProjectSettings(feedback=["faces", "comment"], latest_only=True),
        ),
    ]
