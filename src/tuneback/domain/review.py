"""Review queues and annotation tasks: which runs people should look at, and what they answer.

A queue is a saved rule over runs (a model, a tag, a feedback key and score
range, "has a comment", "no feedback yet", "without a correction") plus the
feedback keys reviewers give and how many reviewers each run needs. The rule is
a :class:`~tuneback.domain.criteria.RunCriteria` of the queue's project (see
:meth:`QueueRule.criteria`), and the queue's runs are kept as runs and feedback
arrive, so a new thumbs-down joins a "thumbs-down" queue on its own. An
annotation task is a prompt set answered by one or more models; its runs carry
the tag :func:`task_tag` and a queue with that tag as its rule reviews them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tuneback.domain.common import DomainModel, Identifier, ProjectName, UtcDatetime, new_id, utcnow
from tuneback.domain.conversation import ChatMessage
from tuneback.domain.criteria import HasKind, RunCriteria, TextKind
from tuneback.domain.feedback import FeedbackKey
from tuneback.domain.run import RunStatus

ItemStatus = Literal["pending", "needs_more", "completed"]
"""An item nobody reviewed yet, one with fewer reviews than the queue asks for, one done."""

TEXT_KEYS = frozenset({"comment", "correction"})
"""Keys whose answer is text: optional in a review, and not part of agreement."""


class QueueRule(DomainModel):
    """Which runs belong in a queue; every criterion given must hold."""

    model: str | None = Field(default=None, max_length=200)
    tag: str | None = Field(default=None, max_length=200)
    status: RunStatus | None = None
    key: FeedbackKey | None = None
    """A feedback key the run has current feedback on (with a score in range, when one is set)."""
    min_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    max_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    has: HasKind | None = None
    """Current feedback of a kind on the run (``none``: no feedback at all)."""
    lacks: TextKind | None = None
    """No current comment (or correction): "thumbs-down *without a correction*"."""

    @model_validator(mode="after")
    def _score_needs_key(self) -> QueueRule:
        scored = self.min_score is not None or self.max_score is not None
        if scored and self.key is None:
            raise ValueError("a score range needs the feedback key it applies to")
        if (
            self.min_score is not None
            and self.max_score is not None
            and self.min_score > self.max_score
        ):
            raise ValueError("min_score is above max_score")
        if self.has == "none" and (self.key is not None or self.lacks is not None):
            raise ValueError("'no feedback yet' cannot be combined with other feedback criteria")
        return self

    def criteria(self, project: str) -> RunCriteria:
        """The runs of ``project`` this rule matches, as every feature selects runs.

        ``has`` and ``lacks`` mean what they mean everywhere: a comment is a
        comment-kind feedback or any feedback carrying comment text.
        """
        scored = self.min_score is not None or self.max_score is not None
        return RunCriteria(
            project=project,
            model=() if self.model is None else (self.model,),
            tag=self.tag,
            status=self.status,
            has_feedback=None if scored else self.key,
            score_key=self.key if scored else None,
            min_score=self.min_score,
            max_score=self.max_score,
            has=self.has,
            lacks=self.lacks,
        )

    def describe(self) -> str:
        """The rule in a few words, as pages show it."""
        parts: list[str] = []
        if self.key is not None:
            if self.min_score is None and self.max_score is None:
                parts.append(f"rated on {self.key}")
            elif self.key == "thumbs" and self.max_score == 0 and not self.min_score:
                parts.append("thumbs-down")
            elif self.key == "thumbs" and self.min_score == 1:
                parts.append("thumbs-up")
            else:
                low = "0" if self.min_score is None else f"{self.min_score:g}"
                high = "1" if self.max_score is None else f"{self.max_score:g}"
                parts.append(f"{self.key} score {low}–{high}")
        if self.has is not None:
            parts.append({"none": "no feedback yet"}.get(self.has, f"has a {self.has}"))
        if self.lacks is not None:
            parts.append(f"without a {self.lacks}")
        if self.model is not None:
            parts.append(f"model {self.model}")
        if self.tag is not None and self.tag.startswith("task:"):
            parts.append("answers of an annotation task")
        elif self.tag is not None:
            parts.append(f"tag {self.tag}")
        if self.status is not None:
            parts.append(f"status {self.status}")
        return " · ".join(parts) if parts else "every run"


def item_status(reviews: int, needed: int) -> ItemStatus:
    """Where an item stands after ``reviews`` distinct reviewers, of ``needed``."""
    if reviews == 0:
        return "pending"
    return "completed" if reviews >= needed else "needs_more"


class ReviewQueue(DomainModel):
    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)
    rule: QueueRule = Field(default_factory=QueueRule)
    keys: list[FeedbackKey] = Field(min_length=1, max_length=10)
    """What reviewers answer, in the order the page shows it."""
    reviewers_per_item: int = Field(default=1, ge=1, le=20)
    lease_seconds: int = Field(default=600, ge=10, le=86_400)
    """How long an opened item stays reserved for its reviewer."""
    created_by: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _distinct_keys(self) -> ReviewQueue:
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("a queue lists each feedback key once")
        return self

    @property
    def rating_keys(self) -> list[str]:
        """The keys a review must answer (comment and correction are optional)."""
        return [key for key in self.keys if key not in TEXT_KEYS]


def task_tag(task_id: str) -> str:
    """The tag every run of an annotation task carries."""
    return f"task:{task_id}"


class AnnotationTask(DomainModel):
    """A prompt set to answer with ``models``; the answers go to review queue ``queue_id``."""

    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    name: str = Field(min_length=1, max_length=200)
    models: list[str] = Field(min_length=1, max_length=10)
    prompts: list[list[ChatMessage]] = Field(min_length=1, max_length=10_000)
    queue_id: Identifier
    created_by: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _prompts_end_with_the_user(self) -> AnnotationTask:
        for index, messages in enumerate(self.prompts):
            if not messages or messages[-1].role != "user":
                raise ValueError(f"prompt {index + 1} must end with a user message")
        return self

    @property
    def total(self) -> int:
        """Answers to generate: every prompt with every model."""
        return len(self.prompts) * len(self.models)
