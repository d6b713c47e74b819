"""What the API takes and gives: ``XCreate`` bodies, ``XPublic`` answers, ``XsPublic`` pages.

Kept apart from the domain types so the wire format changes only on purpose.
Every request body refuses unknown fields: a typo (``scroe``) is a 422 that
names the field instead of a value silently dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tuneback.domain import (
    BattleMode,
    Candidate,
    ChatMessage,
    FeedbackKind,
    FeedbackSource,
    Outcome,
    Role,
    RunStatus,
    RunType,
)
from tuneback.domain.access import AccountRole
from tuneback.domain.common import Identifier, JsonObject, Metadata, ProjectName, UtcDatetime
from tuneback.domain.feedback import FeedbackConfig, FeedbackKey, RawValue

TokenSeconds = Annotated[int, Field(ge=1, le=30 * 24 * 3600)]


def contains_nul(data: Any) -> bool:
    """True when any string in ``data`` holds a NUL character, which PostgreSQL cannot store.

    A loop, not a recursion: it runs before any field is checked, so a body
    nested thousands deep must reach the depth rule rather than crash here.
    """
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, and so is text with NUL in it
    (SQLite would keep it and PostgreSQL refuse it; both databases must answer alike)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    check_nul: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if cls.check_nul and contains_nul(data):
            raise ValueError("text may not contain NUL (\\u0000) characters")
        return data


class Public(BaseModel):
    """Base of responses."""

    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(Public):
    type: str = Field(description="What kind of error, e.g. not_found, conflict, storage_error.")
    message: str = Field(description="What happened and what to do about it.")
    details: Any = Field(default=None, description="More about it, e.g. the fields at fault.")


class ErrorPublic(Public):
    """The one shape of every error answer."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers an operation can give, all in the one shape."""
    said = {
        400: "The request cannot work as sent (a setting, option or parameter).",
        401: "No API key, or an unknown or revoked one.",
        403: "The key may not act on this project.",
        404: "Nothing with that id (in this key's project).",
        409: "An id already names something else, or a locked rating was given again.",
        413: "The body is larger than the server takes.",
        422: "The input broke a rule; details names the fields.",
        429: "Too many writes from this key or address; Retry-After says when to try again.",
        503: "The database is not answering; try again shortly.",
    }
    return {status: {"model": ErrorPublic, "description": said[status]} for status in statuses}


# -- runs ---------------------------------------------------------------------------


def _needs_text_when(field: str, value: str, text: str) -> dict[str, Any]:
    """JSON Schema for "when ``field`` is ``value``, ``text`` must be non-empty text"."""
    return {
        "if": {"properties": {field: {"const": value}}, "required": [field]},
        "then": {"properties": {text: {"type": "string", "minLength": 1}}, "required": [text]},
    }


class RunCreate(Body):
    """A run that happened in your app: what was sent, what came back, how it went.

    A run with status `error` needs its `error` message.
    """

    model_config = ConfigDict(json_schema_extra=_needs_text_when("status", "error", "error"))

    id: Identifier | None = Field(default=None, description="Your id; resending it is a no-op.")
    project: ProjectName | None = Field(
        default=None, description="Defaults to the API key's project."
    )
    run_type: RunType = "llm"
    name: str | None = Field(default=None, max_length=200)
    parent_run_id: Identifier | None = None
    conversation_id: Identifier | None = None
    message_id: Identifier | None = None
    user: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    params: JsonObject = Field(default_factory=dict)
    inputs: list[ChatMessage] | JsonObject = Field(default_factory=list)
    output: str | None = None
    status: RunStatus = "ok"
    error: str | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    prompt_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    completion_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    tags: list[str] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    started_at: UtcDatetime | None = None
    created_at: UtcDatetime | None = Field(default=None, description="Defaults to now.")


class RunPublic(Public):
    id: str
    project: str
    run_type: RunType
    name: str | None
    parent_run_id: str | None
    conversation_id: str | None
    message_id: str | None
    user: str | None
    model: str | None
    params: dict[str, Any]
    inputs: list[ChatMessage] | dict[str, Any]
    output: str | None
    status: RunStatus
    error: str | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tags: list[str]
    metadata: dict[str, Any]
    started_at: datetime | None
    created_at: datetime


class RunsPublic(Public):
    data: list[RunPublic]
    count: int
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


# -- feedback -----------------------------------------------------------------------


class FeedbackFields(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _needs_text_when("kind", "comment", "comment"),
                _needs_text_when("kind", "correction", "correction"),
            ]
        }
    )

    value: RawValue = Field(
        default=None,
        description=(
            "What the person chose (up/down, 4, a label). It must fit the key's feedback "
            "config (thumbs: up/down; stars: 1..5; a continuous key: a number from min to max; "
            "a categorical key: one of its labels); a value that does not is a 422."
        ),
    )
    score: float | None = Field(default=None, ge=0, le=1, description="Already normalised.")
    kind: FeedbackKind | None = None
    comment: str | None = Field(default=None, max_length=20_000)
    correction: str | None = Field(default=None, max_length=200_000)
    user: str | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)


class FeedbackCreate(FeedbackFields):
    id: Identifier | None = Field(default=None, description="Your id; resending it is a no-op.")
    run_id: Identifier
    key: FeedbackKey
    source: FeedbackSource = "api"


class ConversationFeedbackCreate(FeedbackFields):
    """Feedback on a conversation, or on one of its messages: the path names the target."""

    id: Identifier | None = Field(default=None, description="Your id; resending it is a no-op.")
    key: FeedbackKey
    source: FeedbackSource = "api"


class FeedbackPublic(Public):
    id: str
    project: str
    run_id: str | None
    conversation_id: str | None
    key: str
    kind: FeedbackKind
    score: float | None
    value: RawValue
    comment: str | None
    correction: str | None
    user: str | None
    source: FeedbackSource
    metadata: dict[str, Any]
    created_at: datetime
    superseded_by: str | None = None
    retracted_at: datetime | None = None
    current: bool = True


class FeedbacksPublic(Public):
    data: list[FeedbackPublic]
    count: int
    next_cursor: str | None


class FeedbackBatch(Body):
    feedback: list[FeedbackCreate] = Field(min_length=1, max_length=1000)


class TokenFeedback(FeedbackFields):
    """Feedback sent with a presigned token: the token names the run and the key."""


class FeedbackTokenCreate(Body):
    run_id: Identifier
    key: FeedbackKey = "thumbs"
    expires_in: TokenSeconds = Field(default=3 * 3600, description="Seconds; 3 hours by default.")


class FeedbackTokenPublic(Public):
    token: str
    url: str = Field(
        description=(
            "POST feedback here as JSON. Opened in a browser (GET, ?value=… to offer a choice "
            "first), it shows the answer and a button per choice; opening it records nothing."
        )
    )
    run_id: str
    key: str
    expires_at: datetime


# -- feedback configs ---------------------------------------------------------------


class FeedbackConfigSet(Body):
    config: FeedbackConfig


class FeedbackConfigPublic(Public):
    project: str
    key: str
    config: FeedbackConfig


class FeedbackConfigsPublic(Public):
    data: list[FeedbackConfigPublic]
    count: int


# -- conversations and messages -----------------------------------------------------


class ConversationCreate(Body):
    id: Identifier | None = None
    project: ProjectName | None = None
    user: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    system_prompt: str | None = None
    title: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    started_at: UtcDatetime | None = None


class ConversationPublic(Public):
    id: str
    project: str
    user: str | None
    model: str | None
    system_prompt: str | None
    title: str | None
    tags: list[str]
    metadata: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None


class ConversationsPublic(Public):
    data: list[ConversationPublic]
    count: int


class MessageCreate(Body):
    id: Identifier | None = None
    parent_id: Identifier | None = None
    role: Role
    content: str
    run_id: Identifier | None = None
    created_at: UtcDatetime | None = None


class MessagePublic(Public):
    id: str
    conversation_id: str
    project: str
    parent_id: str | None
    role: Role
    content: str
    run_id: str | None
    created_at: datetime


class MessagesPublic(Public):
    data: list[MessagePublic]
    count: int


# -- comparisons --------------------------------------------------------------------


class ComparisonCreate(Body):
    """Which of two or more runs a person preferred.

    The candidates must be different runs. Send an `outcome` (a, b, tie or
    both_bad) for exactly two candidates, or a `ranking` that lists every
    candidate's run_id once, best first. A comparison breaking these is a 422.
    A re-vote names the comparison it replaces in `supersedes`: it must be the
    same user's comparison of the same runs in the same project (404 when there
    is none, 409 when it is someone else's, of other runs, or already replaced).
    """

    id: Identifier | None = None
    project: ProjectName | None = None
    prompt: list[ChatMessage] = Field(default_factory=list)
    candidates: list[Candidate] = Field(min_length=2, max_length=20)
    outcome: Outcome | None = None
    ranking: list[Identifier] | None = None
    user: str | None = Field(default=None, max_length=200)
    comment: str | None = None
    mode: BattleMode | None = Field(
        default=None,
        description=(
            "How the battle was set up: anonymous (two models at random, names hidden until "
            "the vote), named (two models chosen by name) or resample (one model twice)."
        ),
    )
    supersedes: Identifier | None = Field(
        default=None, description="The id of the comparison this re-vote replaces."
    )
    metadata: Metadata = Field(default_factory=dict)


class ComparisonPublic(Public):
    id: str
    project: str
    prompt: list[ChatMessage]
    candidates: list[Candidate]
    outcome: Outcome | None
    ranking: list[str] | None
    user: str | None
    comment: str | None
    mode: BattleMode | None
    supersedes: str | None
    superseded_by: str | None = Field(
        default=None, description="The re-vote that replaced this comparison, if any."
    )
    metadata: dict[str, Any]
    created_at: datetime


class ComparisonsPublic(Public):
    data: list[ComparisonPublic]
    count: int
    next_cursor: str | None


# -- events -------------------------------------------------------------------------


class EventPublic(Public):
    seq: int
    id: str
    type: str
    version: int
    project: str
    recorded_at: datetime
    payload: dict[str, Any]


class EventsPublic(Public):
    data: list[EventPublic]
    count: int
    last_seq: int = Field(description="Pass as ?after= to read on from here.")


# -- ingest -------------------------------------------------------------------------


class IngestRun(RunCreate):
    type: Literal["run"]


class IngestFeedback(FeedbackCreate):
    type: Literal["feedback"]


class IngestComparison(ComparisonCreate):
    type: Literal["comparison"]


IngestItem = Annotated[IngestRun | IngestFeedback | IngestComparison, Field(discriminator="type")]


class IngestBatch(Body):
    check_nul: ClassVar[bool] = False  # each item is checked on its own
    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=5000,
        description=(
            "Runs, feedback and comparisons, each with a `type` of run, feedback or "
            "comparison and the fields of RunCreate, FeedbackCreate or ComparisonCreate. "
            "Each item is checked on its own."
        ),
    )


class ItemError(Public):
    type: str
    message: str
    details: Any = None


class ItemResultPublic(Public):
    index: int
    type: str
    id: str | None
    status: int
    error: ItemError | None = None


class IngestResults(Public):
    successes: list[ItemResultPublic]
    errors: list[ItemResultPublic]


# -- API keys -----------------------------------------------------------------------


class ApiKeyCreate(Body):
    name: str | None = Field(default=None, max_length=200)
    project: ProjectName | None = None
    role: AccountRole = Field(
        default="owner",
        description=(
            "owner: everything in the project; annotator: read and review; "
            "user: log runs, conversations and feedback only."
        ),
    )


class ApiKeyPublic(Public):
    id: str
    project: str
    role: AccountRole
    name: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself: shown this once, store it now.")


class ApiKeysPublic(Public):
    data: list[ApiKeyPublic]
    count: int


class DatasetCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    project: ProjectName | None = None


class DatasetPublic(Public):
    id: str
    project: str
    name: str
    description: str | None
    created_at: datetime
    version: int
    item_count: int


class DatasetsPublic(Public):
    data: list[DatasetPublic]
    count: int


class DatasetRunsAdd(Body):
    run_ids: list[Identifier] = Field(
        min_length=1,
        max_length=1000,
        description="Runs to add as examples, each with the best answer known for it: "
        "its latest correction, else its output. A run already in the dataset keeps its item.",
    )


class DatasetItemPublic(Public):
    id: str
    dataset_id: str
    project: str
    inputs: list[dict[str, Any]]
    output: str
    source: str
    source_run_id: str | None
    metadata: dict[str, Any]
    created_at: datetime
    version: int


class DatasetItemsPublic(Public):
    data: list[DatasetItemPublic]
    count: int
