"""Event payloads: every change to tuneback's data is one of these, appended and never edited.

Each payload class names its dotted ``type`` and its ``version``; a stored event is
read back through :func:`parse_payload`, which finds the class by both, so an old
version can keep its own class (and be upcast) when a payload changes shape.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from tuneback.domain.common import (
    DomainModel,
    Identifier,
    ProjectName,
    UtcDatetime,
    utcnow,
    validate,
)
from tuneback.domain.comparison import Comparison
from tuneback.domain.conversation import Conversation, Message, ProjectSettings
from tuneback.domain.dataset import Dataset, DatasetItem
from tuneback.domain.feedback import Feedback, FeedbackConfig, FeedbackKey
from tuneback.domain.review import AnnotationTask, ReviewQueue
from tuneback.domain.run import Run
from tuneback.errors import ValidationError


class EventPayload(DomainModel):
    """Base of every payload. Subclasses set ``type`` and ``version``."""

    type: ClassVar[str]
    version: ClassVar[int] = 1

    @property
    def project(self) -> str:
        raise NotImplementedError


class ConversationStarted(EventPayload):
    type = "conversation.started"
    conversation: Conversation

    @property
    def project(self) -> str:
        return self.conversation.project


class ConversationEnded(EventPayload):
    type = "conversation.ended"
    project_name: ProjectName = Field(alias="project")
    conversation_id: Identifier
    ended_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def project(self) -> str:
        return self.project_name


class MessageAdded(EventPayload):
    type = "message.added"
    message: Message

    @property
    def project(self) -> str:
        return self.message.project


class RunCompleted(EventPayload):
    """A run that produced its output (status ``ok``)."""

    type = "run.completed"
    run: Run

    @model_validator(mode="after")
    def _ok(self) -> RunCompleted:
        if self.run.status != "ok":
            raise ValueError("run.completed carries a run with status 'ok'; use run.failed")
        return self

    @property
    def project(self) -> str:
        return self.run.project


class RunFailed(EventPayload):
    """A run that ended in an error or was cancelled; any partial output is kept."""

    type = "run.failed"
    run: Run

    @model_validator(mode="after")
    def _not_ok(self) -> RunFailed:
        if self.run.status == "ok":
            raise ValueError("run.failed carries a run with status 'error' or 'cancelled'")
        return self

    @property
    def project(self) -> str:
        return self.run.project


class FeedbackRecorded(EventPayload):
    type = "feedback.recorded"
    feedback: Feedback

    @property
    def project(self) -> str:
        return self.feedback.project


class FeedbackRetracted(EventPayload):
    type = "feedback.retracted"
    project_name: ProjectName = Field(alias="project")
    feedback_id: Identifier
    user: str | None = None
    retracted_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def project(self) -> str:
        return self.project_name


class ComparisonRecorded(EventPayload):
    type = "comparison.recorded"
    comparison: Comparison

    @property
    def project(self) -> str:
        return self.comparison.project


class DatasetCreated(EventPayload):
    type = "dataset.created"
    dataset: Dataset

    @property
    def project(self) -> str:
        return self.dataset.project


class DatasetItemAdded(EventPayload):
    type = "dataset.item_added"
    item: DatasetItem

    @property
    def project(self) -> str:
        return self.item.project


class DatasetItemRemoved(EventPayload):
    type = "dataset.item_removed"
    project_name: ProjectName = Field(alias="project")
    dataset_id: Identifier
    item_id: Identifier

    @property
    def project(self) -> str:
        return self.project_name


class FeedbackConfigSet(EventPayload):
    """Declares what a feedback key accepts in a project (continuous, categorical, free-form)."""

    type = "feedback.config_set"
    project_name: ProjectName = Field(alias="project")
    key: FeedbackKey
    config: FeedbackConfig

    @property
    def project(self) -> str:
        return self.project_name


class ProjectConfigured(EventPayload):
    """A project's settings changed: the new settings replace the old ones whole."""

    type = "project.configured"
    project_name: ProjectName = Field(alias="project")
    settings: ProjectSettings

    @property
    def project(self) -> str:
        return self.project_name


class ReviewQueueCreated(EventPayload):
    """A review queue: a saved rule over runs and what reviewers answer about them."""

    type = "review_queue.created"
    queue: ReviewQueue

    @property
    def project(self) -> str:
        return self.queue.project


class AnnotationTaskCreated(EventPayload):
    """A prompt set to answer with some models; its runs and reviews are events of their own."""

    type = "annotation_task.created"
    task: AnnotationTask

    @property
    def project(self) -> str:
        return self.task.project


PAYLOAD_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.type, cls.version): cls
    for cls in (
        ConversationStarted,
        ConversationEnded,
        MessageAdded,
        RunCompleted,
        RunFailed,
        FeedbackRecorded,
        FeedbackRetracted,
        ComparisonRecorded,
        DatasetCreated,
        DatasetItemAdded,
        DatasetItemRemoved,
        FeedbackConfigSet,
        ProjectConfigured,
        ReviewQueueCreated,
        AnnotationTaskCreated,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(sorted({name for name, _ in PAYLOAD_TYPES}))


def dump_payload(payload: EventPayload) -> dict[str, Any]:
    """The payload as JSON-ready data, the form it is stored in."""
    return payload.model_dump(mode="json", by_alias=True)


def parse_payload(type_: str, version: int, data: dict[str, Any]) -> EventPayload:
    """Read a stored or submitted payload back into its class."""
    cls = PAYLOAD_TYPES.get((type_, version))
    if cls is None:
        raise ValidationError(
            f"unknown event type {type_!r} (version {version})",
            details={"known": list(EVENT_TYPES)},
        )
    return validate(cls, data, what=f"{type_} payload")


class StoredEvent(DomainModel):
    """An event as the log holds it: its place (``seq``), id, type and payload."""

    seq: int
    id: Identifier
    type: str
    version: int
    project: ProjectName
    recorded_at: UtcDatetime
    payload: EventPayload

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "project": self.project,
            "recorded_at": self.recorded_at.isoformat(),
            "payload": dump_payload(self.payload),
        }
