"""Shared building blocks of the domain: ids, times and the base model."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from ulid import ULID

from tuneback.errors import ValidationError

M = TypeVar("M", bound=BaseModel)


_ULID_LOCK = threading.Lock()


def new_id() -> str:
    """A new ULID as its 26-character string: unique and sortable by time."""
    # ULIDs made in the same millisecond step on from the last one, and that
    # state is not safe across threads: two threads could get the same id.
    with _ULID_LOCK:
        return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes are taken as UTC; aware ones are converted, so every
    # timestamp in the domain compares and serialises the same way.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A timestamp that is always timezone-aware UTC."""

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
"""An id: a ULID when tuneback makes it; clients may bring their own (UUIDs, slugs)."""

ProjectName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]

Metadata = dict[str, Any]


class DomainModel(BaseModel):
    """Base of every domain type: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate(model: type[M], data: Any, *, what: str | None = None) -> M:
    """Build ``model`` from ``data``, raising tuneback's one :class:`ValidationError`.

    Its ``details`` list each broken field (``loc``, ``msg``, ``type``) as the API
    shows them.
    """
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ValidationError(
            f"invalid {what or model.__name__}: {where}: {first['msg']}",
            details=[{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors],
        ) from None
