"""Which runs: the one description of a set of runs that every feature filters by.

The runs explorer and ``GET /api/v1/runs``, review queues, exports and the
dashboard all say "these runs" with a :class:`RunCriteria`, and storage turns
it into SQL in one place (``tuneback.storage.criteria``), so a filter means the
same thing wherever it is used. Every criterion given must hold; unset ones do
not narrow.

Feedback criteria read feedback as it stands now (not superseded, not
retracted). "Has a comment" is a run with a comment-kind feedback *or* any
feedback carrying comment text (a thumbs-down often brings its comment on the
same row), which is what the comment badge on a run shows; "has a correction"
likewise.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, ConfigDict, Field

from tuneback.domain.common import DomainModel, UtcDatetime
from tuneback.domain.run import RunStatus

HasKind = Literal["feedback", "comment", "correction", "none"]
"""``feedback``: any feedback but implicit signals; ``none``: no feedback at all yet."""

TextKind = Literal["comment", "correction"]

HAS_KINDS: tuple[str, ...] = get_args(HasKind)


def _one_or_many(value: Any) -> Any:
    # One model is often written as a plain string (a saved queue rule, a page's
    # single-choice filter), and "no model" as None.
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


class RunCriteria(DomainModel):
    """Which runs; every criterion given must hold."""

    # The notes under the fields are their descriptions in the API's schema.
    model_config = ConfigDict(use_attribute_docstrings=True)

    project: str | None = Field(default=None, max_length=64)
    model: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        default=(), max_length=50
    )
    """Any of these models (none given: every model)."""
    user: str | None = Field(default=None, max_length=200)
    conversation_id: str | None = Field(default=None, max_length=64)
    status: RunStatus | None = None
    since: UtcDatetime | None = None
    """Ran at or after (its started_at when given, else when it was recorded)."""
    until: UtcDatetime | None = None
    """Ran before (its started_at when given, else when it was recorded)."""
    tag: str | None = Field(default=None, max_length=200)
    has_feedback: str | None = Field(default=None, max_length=64)
    """A feedback key: only runs with current feedback on it."""
    score_key: str | None = Field(default=None, max_length=64)
    """The key min_score and max_score apply to (any key when unset)."""
    min_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    """Some current feedback scores at least this."""
    max_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    """Some current feedback scores at most this (with min_score: one feedback in the range)."""
    has: HasKind | None = None
    """Current feedback of a kind: feedback (anything but implicit signals), comment (a
    comment, or any feedback with comment text), correction (likewise), none (no feedback)."""
    lacks: TextKind | None = None
    """No current comment (or correction) on the run: "thumbs-down *without a correction*"."""
    min_latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    """Bounds on prompt + completion tokens."""
    text: str | None = Field(default=None, max_length=200)
    """Words to find in the answer or the inputs (case-insensitive)."""
    dataset_id: str | None = Field(default=None, max_length=64)
    """Only the runs this dataset's items came from."""

    def reads_feedback(self) -> bool:
        """Whether a change in a run's feedback can change whether it matches."""
        feedback = (self.has_feedback, self.min_score, self.max_score, self.has, self.lacks)
        return any(value is not None for value in feedback)
