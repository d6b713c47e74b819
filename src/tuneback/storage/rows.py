"""Rows read from the database, made into domain objects: one mapper per kind of row.

Every module that reads a table goes through these, so a column added or
derived later is handled in one place.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from tuneback.domain import (
    CategoricalConfig,
    ContinuousConfig,
    FeedbackConfig,
    FeedbackRecord,
    FreeformConfig,
    StoredEvent,
    parse_payload,
)

M = TypeVar("M", bound=BaseModel)
D = TypeVar("D")

FeedbackConfigType = ContinuousConfig | CategoricalConfig | FreeformConfig
_FEEDBACK_CONFIG: TypeAdapter[FeedbackConfigType] = TypeAdapter(FeedbackConfig)


def model_from_row(model: type[M], row: Any) -> M:
    """A domain model whose fields are the row's columns (a ``.mappings()`` row)."""
    return model.model_validate(dict(row))


def record_from_row(record: type[D], row: Any) -> D:
    """A dataclass made from the row's columns that it names; other columns are left out."""
    columns = row._mapping
    names = (f.name for f in dataclasses.fields(record))  # type: ignore[arg-type]
    return record(**{name: columns[name] for name in names if name in columns})


def feedback_from_row(row: Any) -> FeedbackRecord:
    """A ``feedback`` row (``.mappings()``) as the record readers see."""
    data = dict(row)
    del data["current"]  # derived from the history marks, which the record carries
    return FeedbackRecord.model_validate(data)


def event_from_row(row: Any) -> StoredEvent:
    """An ``events`` row with its payload read back into its class."""
    return StoredEvent(
        seq=row.seq,
        id=row.id,
        type=row.type,
        version=row.version,
        project=row.project,
        recorded_at=row.recorded_at,
        payload=parse_payload(row.type, row.version, row.payload),
    )


def feedback_config_from_json(stored: Any) -> FeedbackConfigType:
    """A ``feedback_configs.config`` value as the config it declares."""
    return _FEEDBACK_CONFIG.validate_python(stored)
