"""Feedback on runs and the rules that turn what a person chose into a score in 0..1.

Scores are normalised so that every key can be compared and averaged:

* ``thumbs``: 👍 → 1, 👎 → 0;
* ``faces``: 😞 0, 🙁 0.25, 😐 0.5, 🙂 0.75, 😀 1 (or 1..5);
* ``stars``: n of 5 → (n - 1) / 4;
* any other key follows its :data:`FeedbackConfig`: continuous keys declare
  min/max, categorical keys list their labels (each may carry a score), and
  free-form keys carry no score.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from tuneback.domain.common import (
    DomainModel,
    Identifier,
    Metadata,
    ProjectName,
    UtcDatetime,
    new_id,
    utcnow,
)
from tuneback.errors import ValidationError

FeedbackKind = Literal["explicit", "implicit", "comment", "correction"]
FeedbackSource = Literal["end_user", "annotator", "api"]


def _finite(value: bool | int | float | str | None) -> bool | int | float | str | None:
    # JSON has no inf or nan: stored, they would read back as null. An integer
    # past the largest float (10**400) could never be scored or averaged.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers must be finite (got {value})")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST:
        raise ValueError("numbers must be finite (got an integer too large for a float)")
    return value


_LARGEST = int(sys.float_info.max)


RawValue = Annotated[bool | int | float | str | None, AfterValidator(_finite)]
"""What a person chose (👍, 4 stars, a label…), before it is normalised to a score."""


def normalize_key(value: object) -> object:
    """A feedback key in its one stored form: Unicode NFC, no space at either end, and
    each run of spaces inside as one, so ``"faces  🙂 "`` and ``"faces 🙂"`` are one key."""
    if isinstance(value, str):
        return " ".join(unicodedata.normalize("NFC", value).split())
    return value


_KEY_CHAR = r"[^\s\x00-\x1f\x7f-\x9f/\\\"'<>`]"
KEY_PATTERN = rf"^{_KEY_CHAR}(?:(?:{_KEY_CHAR}| )*{_KEY_CHAR})?$"
"""What a key may hold once normalised: letters, digits, emoji and punctuation, with
single spaces between words; no control characters, and none of / \\ " ' < > ` (a key
goes into URLs and pages)."""

_KEY = re.compile(KEY_PATTERN)


def _check_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(
            "a feedback key is letters, digits, emoji and punctuation with single spaces "
            "between words; not / \\ \" ' < > ` or control characters"
        )
    return value


FeedbackKey = Annotated[
    str,
    BeforeValidator(normalize_key),
    AfterValidator(_check_key),
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": KEY_PATTERN}),
]


class Feedback(DomainModel):
    """One piece of feedback on a run (or on a whole conversation).

    A new rating from the same user on the same key and target supersedes the
    earlier one; the superseded row and the event that made it stay in the store.
    """

    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    run_id: Identifier | None = None
    conversation_id: Identifier | None = None
    key: FeedbackKey
    kind: FeedbackKind = "explicit"
    score: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    value: RawValue = None
    comment: str | None = None
    correction: str | None = None
    user: str | None = None
    source: FeedbackSource = "end_user"
    metadata: Metadata = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _check_target_and_kind(self) -> Feedback:
        if self.run_id is None and self.conversation_id is None:
            raise ValueError("feedback needs a run_id or a conversation_id")
        if self.kind == "correction" and not self.correction:
            raise ValueError("feedback of kind 'correction' needs the corrected text")
        if self.kind == "comment" and not self.comment:
            raise ValueError("feedback of kind 'comment' needs the comment text")
        return self


class Category(DomainModel):
    label: str = Field(min_length=1)
    score: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)


def _type_is_required(schema: dict[str, Any]) -> None:
    """A config is told apart by its ``type``: the schema says it must be sent."""
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


class ContinuousConfig(DomainModel):
    """A numeric key: values from `min` to `max` (above `min`) map linearly onto 0..1."""

    model_config = ConfigDict(json_schema_extra=_type_is_required)

    type: Literal["continuous"] = "continuous"
    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> ContinuousConfig:
        if not self.max > self.min:
            raise ValueError("a continuous feedback config needs max > min")
        return self


class CategoricalConfig(DomainModel):
    """A key with a fixed set of labels; a label's score (if any) is its normalised score."""

    model_config = ConfigDict(json_schema_extra=_type_is_required)

    type: Literal["categorical"] = "categorical"
    categories: list[Category] = Field(min_length=1)

    def find(self, value: RawValue) -> Category | None:
        text = str(value).strip().lower()
        return next((c for c in self.categories if c.label.lower() == text), None)


class FreeformConfig(DomainModel):
    """Any text; no score."""

    model_config = ConfigDict(json_schema_extra=_type_is_required)

    type: Literal["freeform"] = "freeform"


FeedbackConfig = Annotated[
    ContinuousConfig | CategoricalConfig | FreeformConfig, Field(discriminator="type")
]

FACES = ("😞", "🙁", "😐", "🙂", "😀")
FACE_NAMES = ("very_bad", "bad", "neutral", "good", "very_good")

THUMBS_CONFIG = CategoricalConfig(
    categories=[Category(label="up", score=1.0), Category(label="down", score=0.0)]
)
FACES_CONFIG = CategoricalConfig(
    categories=[Category(label=face, score=i / 4) for i, face in enumerate(FACES)]
)
STARS_CONFIG = ContinuousConfig(min=1, max=5)

BUILTIN_CONFIGS: dict[str, ContinuousConfig | CategoricalConfig | FreeformConfig] = {
    "thumbs": THUMBS_CONFIG,
    "faces": FACES_CONFIG,
    "stars": STARS_CONFIG,
}

_THUMBS_UP = {"up", "👍", "good", "yes", "true", "1", "positive", "thumbs_up"}
_THUMBS_DOWN = {"down", "👎", "bad", "no", "false", "0", "negative", "thumbs_down"}


def _thumbs_score(value: RawValue) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    text = str(value).strip().lower()
    if text in _THUMBS_UP:
        return 1.0
    if text in _THUMBS_DOWN:
        return 0.0
    raise ValidationError(
        f"thumbs takes up/down (or 👍/👎, true/false, 1/0), not {value!r}",
        details={"key": "thumbs", "value": value},
    )


def _faces_score(value: RawValue) -> float:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return (value - 1) / 4
    text = str(value).strip()
    if text in FACES:
        return FACES.index(text) / 4
    if text.lower() in FACE_NAMES:
        return FACE_NAMES.index(text.lower()) / 4
    if text.isdigit() and 1 <= int(text) <= 5:
        return (int(text) - 1) / 4
    raise ValidationError(
        f"faces takes one of {' '.join(FACES)} (or 1..5), not {value!r}",
        details={"key": "faces", "value": value},
    )


def _number(key: str, value: RawValue) -> float:
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"{key} takes a number, not {value!r}", details={"key": key})
    try:
        number = float(value)
    except OverflowError:
        raise ValidationError(f"{key} takes a finite number", details={"key": key}) from None
    except ValueError:
        raise ValidationError(
            f"{key} takes a number, not {value!r}", details={"key": key, "value": value}
        ) from None
    if not math.isfinite(number):
        raise ValidationError(f"{key} takes a finite number", details={"key": key})
    return number


def _continuous_score(key: str, value: RawValue, config: ContinuousConfig) -> float:
    number = _number(key, value)
    if not config.min <= number <= config.max:
        raise ValidationError(
            f"{key} must be between {config.min:g} and {config.max:g}, got {number:g}",
            details={"key": key, "value": value, "min": config.min, "max": config.max},
        )
    return (number - config.min) / (config.max - config.min)


def normalize_score(
    key: str,
    value: RawValue,
    config: ContinuousConfig | CategoricalConfig | FreeformConfig | None = None,
) -> float | None:
    """The 0..1 score for ``value`` given on ``key``.

    ``config`` overrides the built-in rules; without one, ``thumbs``, ``faces`` and
    ``stars`` use theirs, and any other key accepts a number already in 0..1 (or
    no value at all). Raises :class:`~tuneback.errors.ValidationError` naming
    the rule that was broken.
    """
    if config is None:
        if key == "thumbs":
            return _thumbs_score(value)
        if key == "faces":
            return _faces_score(value)
        config = BUILTIN_CONFIGS.get(key)
    if value is None:
        return None
    if isinstance(config, FreeformConfig):
        return None
    if isinstance(config, ContinuousConfig):
        return _continuous_score(key, value, config)
    if isinstance(config, CategoricalConfig):
        category = config.find(value)
        if category is None:
            labels = ", ".join(c.label for c in config.categories)
            raise ValidationError(
                f"{key} takes one of: {labels}; got {value!r}",
                details={"key": key, "value": value, "allowed": labels},
            )
        return category.score
    number = _number(key, value)
    if not 0.0 <= number <= 1.0:
        raise ValidationError(
            f"{key} has no feedback config, so its value must be a score in 0..1 "
            f"(declare min/max for other ranges); got {number:g}",
            details={"key": key, "value": value},
        )
    return number


def describe_value(key: str, value: Any) -> str:
    """A short human label for a raw value (👍, 🙂, ★★★☆☆ …) used by pages and the CLI."""
    if value is None:
        return ""
    if key == "thumbs":
        try:
            return "👍" if _thumbs_score(value) == 1.0 else "👎"
        except ValidationError:
            return str(value)
    if key == "faces":
        try:
            return FACES[round(_faces_score(value) * 4)]
        except ValidationError:
            return str(value)
    if key == "stars" and isinstance(value, int | float) and 1 <= value <= 5:
        return "★" * int(value) + "☆" * (5 - int(value))
    return str(value)


class FeedbackRecord(Feedback):
    """Feedback as the store holds it, with its history marks."""

    superseded_by: Identifier | None = None
    retracted_at: UtcDatetime | None = None

    @property
    def current(self) -> bool:
        return self.superseded_by is None and self.retracted_at is None
