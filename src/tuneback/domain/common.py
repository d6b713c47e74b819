"""Shared building blocks of the domain: ids, times and the base model."""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic import ValidationError as PydanticValidationError
from ulid import ULIDGenerator

from tuneback.errors import ValidationError

M = TypeVar("M", bound=BaseModel)


class _RandomBytes:
    """The ids' random part: ``os.urandom`` read 4 KiB at a time.

    Every ``os.urandom`` call lets go of the interpreter lock, and while the
    store's writer thread is busy, taking it back can keep the event loop
    waiting for a whole switch interval (5 ms). Reading ahead makes that one
    call in 409 ids.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0

    def __call__(self, _timestamp: int) -> bytes:
        at = self._at
        if at + 10 > len(self._buffer):
            self._buffer, at = os.urandom(self.SIZE), 0
        self._at = at + 10
        return self._buffer[at : at + 10]


def _generator() -> ULIDGenerator:
    return ULIDGenerator(randomness=_RandomBytes())


def _after_fork() -> None:
    # A child must not step on from its parent's last id or reuse the bytes
    # its parent read ahead: both would give the two processes the same ids.
    global _ULIDS
    _ULIDS = _generator()


_ULIDS = _generator()
_ULID_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_after_fork)


def new_id() -> str:
    """A new ULID as its 26-character string: unique and sortable by time."""
    # ULIDs made in the same millisecond step on from the last one, and that
    # state (like the random bytes read ahead) is not safe across threads.
    with _ULID_LOCK:
        return str(_ULIDS.generate())


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes are taken as UTC; aware ones are converted, so every
    # timestamp in the domain compares and serialises the same way.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-23:59 is a valid time that falls after year 9999
        # in UTC; a ValueError makes it a validation error naming the field.
        raise ValueError("is out of range once converted to UTC (years 1..9999)") from None


def _not_a_number(value: Any) -> Any:
    # A timestamp on the wire is RFC 3339 text, as the API's schema says; pydantic
    # would also take a number (or text of one) as seconds since 1970.
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
    ):
        raise ValueError("must be a date-time such as 2024-05-01T12:00:00Z, not a number")
    return value


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

UtcDatetime = Annotated[
    datetime, Strict(False), BeforeValidator(_not_a_number), AfterValidator(_as_utc)
]
"""A timestamp that is always timezone-aware UTC, sent as date-time text."""

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
"""An id: a ULID when tuneback makes it; clients may bring their own (UUIDs, slugs)."""

ProjectName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]

MAX_JSON_DEPTH = 64
"""How deep free-form JSON (metadata, params, rules…) may nest.

Deeper values are refused: encoding or comparing them would recurse until
Python gives up, and no honest client nests this deep.
"""


_CONTAINERS = (dict, list, tuple)


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests dicts and lists more than ``limit`` levels deep.

    A loop over an explicit stack, not a recursion, so that any depth is measured
    safely: this is the check that keeps the recursive code that follows safe.
    """
    if not isinstance(value, _CONTAINERS):
        return False
    # Only containers are stacked: most values are flat, and each scalar
    # skipped here is one the loop never has to visit.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, _CONTAINERS):
                stack.append((child, depth + 1))
    return False


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    if json_depth_exceeds(value):
        raise ValueError(
            f"nests deeper than {MAX_JSON_DEPTH} levels (the limit for free-form JSON)"
        )
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_shallow)]
"""A free-form JSON object, nested at most :data:`MAX_JSON_DEPTH` levels deep."""

Metadata = JsonObject
"""Free-form metadata a client attaches to a run, feedback, a conversation…"""


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
