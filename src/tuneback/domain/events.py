"""Event payloads: every change to tuneback's data is one of these, appended and never edited.

Each payload class names its dotted ``type`` and its ``version``; a stored event is
read back through :func:`parse_payload`, which finds the class by both, so an old
version can keep its own class (and be upcast) when a payload changes shape.
A payload is stored as the text :func:`encode_payload` returns, which refuses
anything that would not read back equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticSerializationError, to_json

from tuneback.domain.common import (
    DomainModel,
    Identifier,
    JsonObject,
    ProjectName,
    UtcDatetime,
    utcnow,
    validate,
)
from tuneback.domain.comparison import Comparison
from tuneback.domain.conversation import Conversation, Message, ProjectSettings
from tuneback.domain.dataset import Dataset, DatasetItem
from tuneback.domain.feedback import Feedback, FeedbackConfig, FeedbackKey
from tuneback.domain.json_encoding import json_loads
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


class ConversationRenamed(EventPayload):
    """A person gave their conversation a title of their own."""

    type = "conversation.renamed"
    project_name: ProjectName = Field(alias="project")
    conversation_id: Identifier
    title: str = Field(min_length=1, max_length=200)
    renamed_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def project(self) -> str:
        return self.project_name


class ConversationDeleted(EventPayload):
    """A person removed a conversation from their chat.

    It leaves their list and can no longer be opened in the chat; its events stay
    in the log and its runs and feedback stay in dashboards and exports (erasing
    a person's data is ``tuneback forget``).
    """

    type = "conversation.deleted"
    project_name: ProjectName = Field(alias="project")
    conversation_id: Identifier
    deleted_at: UtcDatetime = Field(default_factory=utcnow)

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
    new_version: bool = True
    """Whether this item starts a new version of its dataset.

    One action makes one version: a bulk add writes one event per item, and all
    but the first say False, so every item of the action shares the first one's
    version.
    """

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


class EventForgotten(EventPayload):
    """A tombstone: what an event becomes when the person whose data it held is forgotten.

    The row keeps its ``seq``, id, project and time, so the log stays gapless and
    every follower's cursor stays valid; the payload is replaced by this one, which
    holds nothing anyone wrote. Replay applies none of the original's content, only
    the counters it moved on things that were not the person's own (a dataset's
    version, an annotation task's progress), so every other row reads the same
    after a rebuild as before. Only forgetting writes tombstones; a write that
    names a forgotten event's id is refused.
    """

    type = "event.forgotten"
    project_name: ProjectName = Field(alias="project")
    was: str = Field(min_length=1, max_length=64)
    """The type the event had: says what kind of thing was removed, not what it said."""
    forgotten_at: UtcDatetime = Field(default_factory=utcnow)
    dataset_id: Identifier | None = None
    """The dataset whose version the original moved; replay still moves it."""
    task_id: Identifier | None = None
    """The annotation task whose progress the original counted (done or failed, by ``was``)."""

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


SYSTEM_PROJECT = "_system"
"""The project an event not tied to one is logged under (a login, forgetting a user).

The log's rows each carry a project; this name is reserved for those events, so
no API key can be made for it and they stay out of every project's own events.
"""

AuditAction = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$")
]
"""What was done, dotted: ``key.created``, ``key.revoked``, ``export``, ``login``…"""


class AuditRecorded(EventPayload):
    """Someone did something worth a trace: made or revoked a key, exported, logged in.

    It says who (``actor``: an account name, an API key id, ``cli``, or None when
    nobody identified themselves), what (``action``), to what (``target``: a key
    id, an output directory, a user) and a few ``details``: never a secret or
    anything a user wrote. It changes no projection.
    """

    type = "audit.recorded"
    action: AuditAction
    actor: str | None = Field(default=None, max_length=200)
    project_name: ProjectName | None = Field(default=None, alias="project")
    target: str | None = Field(default=None, max_length=500)
    details: JsonObject = Field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.project_name if self.project_name is not None else SYSTEM_PROJECT


PAYLOAD_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.type, cls.version): cls
    for cls in (
        ConversationStarted,
        ConversationEnded,
        ConversationRenamed,
        ConversationDeleted,
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
        AuditRecorded,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(sorted({name for name, _ in PAYLOAD_TYPES}))
"""The types writers append."""

# Read like any payload, but never appended: only forgetting a user writes one.
PAYLOAD_TYPES[(EventForgotten.type, EventForgotten.version)] = EventForgotten


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


def encode_payload(payload: EventPayload) -> str:
    """The JSON text to store for ``payload``, once it is known to read back equal.

    The log is replayed for good, so a payload that would be stored changed (an
    infinite number becomes null, a tuple a list) or that PostgreSQL cannot hold
    (a NUL character, a lone surrogate) is refused with a
    :class:`~tuneback.errors.ValidationError` naming the field, never mended.
    The check is the read itself: the text is parsed back as every reader
    parses it, with :func:`parse_payload`, and compared with ``payload``.
    """
    try:
        text = payload.model_dump_json(by_alias=True)
    except PydanticSerializationError as exc:
        raise _refusal(payload, f"cannot be written as JSON ({exc})") from None
    # JSON writes NUL as this escape. The text may also hold it after an escaped
    # backslash, which is harmless: hence the closer look before refusing.
    if "\\u0000" in text and (problem := _first_unstorable(payload, ())) is not None:
        raise _refusal_at(payload, *problem)
    try:
        read_back = parse_payload(payload.type, payload.version, json_loads(text))
    except ValidationError as exc:
        raise _refusal(
            payload, f"{exc.message} (once stored and read back)", details=exc.details
        ) from None
    if read_back != payload:
        fallback = f"invalid {payload.type} payload: would not read back equal"
        raise _refusal(payload, fallback, read_back=read_back)
    return text


# Everything below runs only when a payload is refused, to say where and why.

_Loc = tuple[str | int, ...]
_Problem = tuple[_Loc, str, str]
"""Where (``loc``), what (``msg``) and which kind of problem (``type``), as the API shows them."""


def _refusal(
    payload: EventPayload,
    fallback: str,
    *,
    details: Any = None,
    read_back: EventPayload | None = None,
) -> ValidationError:
    problem = _first_unstorable(payload, ())
    if problem is None and read_back is not None:
        problem = _first_difference(payload, read_back, ())
    if problem is None:
        return ValidationError(fallback, details=details)
    return _refusal_at(payload, *problem)


def _refusal_at(payload: EventPayload, loc: _Loc, message: str, kind: str) -> ValidationError:
    where = ".".join(str(part) for part in loc) or "payload"
    return ValidationError(
        f"invalid {payload.type} payload: {where}: {message}",
        details=[{"loc": list(loc), "msg": message, "type": kind}],
    )


def _first_unstorable(value: Any, loc: _Loc) -> _Problem | None:
    """The first non-finite number, text PostgreSQL refuses, or value JSON cannot hold."""
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return loc, f"numbers must be finite (got {value})", "finite_number"
    if isinstance(value, str):
        return _text_problem(value, loc, "text")
    if isinstance(value, BaseModel):
        items: Iterable[tuple[str | int, Any]] = (
            (field.alias or name, getattr(value, name))
            for name, field in type(value).model_fields.items()
        )
    elif isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and (problem := _text_problem(key, (*loc, _key(key)), "keys")):
                return problem
        items = ((_key(key), item) for key, item in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        items = enumerate(value)
    else:
        try:
            to_json(value)
        except PydanticSerializationError:
            return loc, f"values of type {type(value).__name__} cannot be stored as JSON", "json"
        return None
    for part, item in items:
        problem = _first_unstorable(item, (*loc, part))
        if problem is not None:
            return problem
    return None


def _text_problem(text: str, loc: _Loc, what: str) -> _Problem | None:
    if "\x00" in text:
        return loc, f"{what} must not contain NUL characters (\\x00)", "string_nul"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ascii(text[exc.start])
        message = f"{what} must be valid Unicode (lone surrogate {char} at position {exc.start})"
        return loc, message, "string_surrogate"
    return None


def _key(key: Any) -> str | int:
    # Keys go into the message and the API's error body, which must stay encodable.
    if isinstance(key, int) or (isinstance(key, str) and key.isprintable()):
        return key
    return ascii(key)


def _first_difference(before: Any, after: Any, loc: _Loc) -> _Problem | None:
    """The first place where ``after``, the payload as read back, differs from ``before``."""
    if isinstance(before, BaseModel) and type(before) is type(after):
        pairs: Iterable[tuple[str | int, Any, Any]] = (
            (field.alias or name, getattr(before, name), getattr(after, name))
            for name, field in type(before).model_fields.items()
        )
    elif isinstance(before, dict) and isinstance(after, dict) and before.keys() == after.keys():
        pairs = ((_key(key), item, after[key]) for key, item in before.items())
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = ((index, *pair) for index, pair in enumerate(zip(before, after, strict=True)))
    elif before == after:
        return None
    else:
        return loc, f"{_brief(before)} would be stored as {_brief(after)}", "round_trip"
    for part, item, other in pairs:
        problem = _first_difference(item, other, (*loc, part))
        if problem is not None:
            return problem
    return None


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


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
