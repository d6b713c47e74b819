"""What the SDK sends and how it reads answers: item payloads, errors, retry rules.

Shared by :class:`~tuneback.client.Client` and :class:`~tuneback.client.AsyncClient`
so the two never disagree. Every item gets its id here, on the client: a retry
after a timeout sends the same ids, and the server answers it as the first time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from tuneback.domain import ChatMessage, Run, new_id
from tuneback.errors import (
    ConflictError,
    NotFoundError,
    StorageError,
    TuneBackError,
    ValidationError,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF = 10.0

FeedbackType = Literal["rating", "correction", "action", "comment"]

POSITIVE_ACTIONS = frozenset({"copied", "copy", "saved", "save", "shared", "accepted", "used"})
NEGATIVE_ACTIONS = frozenset({"dismissed", "deleted", "rejected", "regenerated", "ignored"})


class ApiError(TuneBackError):
    """An error answer from the server that no more specific class describes."""

    def __init__(self, message: str, *, status: int, type_: str, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.error_type = type_


_ERRORS: dict[str, type[TuneBackError]] = {
    "validation_error": ValidationError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "storage_error": StorageError,
}


def raise_for_error(response: httpx.Response) -> None:
    """Turn the server's one error shape into tuneback's exceptions."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        type_, message, details = str(error["type"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        type_, message, details = "http_error", response.text[:500], None
    cls = _ERRORS.get(type_)
    if cls is not None:
        raise cls(message, details=details)
    raise ApiError(
        f"{response.status_code} {type_}: {message}",
        status=response.status_code,
        type_=type_,
        details=details,
    )


def retryable(status: int) -> bool:
    return status in RETRY_STATUSES


def backoff(attempt: int, base: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, jittered, capped."""
    delay: float = min(MAX_BACKOFF, base * (2**attempt))
    return delay * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class FeedbackToken:
    """A presigned link for rating one run on one key, without an API key.

    ``url`` takes the rating as a JSON POST; opened in a browser it shows the
    answer and a button per choice, and only a press of one records the rating.
    """

    token: str
    url: str
    run_id: str
    key: str
    expires_at: datetime


@dataclass(frozen=True)
class RunsPage:
    runs: list[Run]
    next_cursor: str | None


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in data.items()
        if v is not None
    }


def messages(inputs: str | Sequence[ChatMessage | Mapping[str, Any]] | Mapping[str, Any]) -> Any:
    """Inputs as the API takes them; a bare string is one user message."""
    if isinstance(inputs, str):
        return [{"role": "user", "content": inputs}]
    if isinstance(inputs, Mapping):
        return dict(inputs)
    return [m.model_dump() if isinstance(m, ChatMessage) else {**m} for m in inputs]


def run_item(
    *,
    inputs: Any,
    output: str | None,
    id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "type": "run",
        **_clean({"id": id or new_id(), "inputs": messages(inputs), "output": output, **fields}),
    }


def feedback_item(*, run_id: str, key: str, id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "type": "feedback",
        **_clean({"id": id or new_id(), "run_id": run_id, "key": key, **fields}),
    }


def comparison_item(
    *,
    run_ids: Sequence[str],
    outcome: str | None = None,
    ranking: Sequence[str] | None = None,
    id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "type": "comparison",
        **_clean(
            {
                "id": id or new_id(),
                "candidates": [{"run_id": run_id} for run_id in run_ids],
                "outcome": outcome,
                "ranking": list(ranking) if ranking is not None else None,
                **fields,
            }
        ),
    }


def humanloop_item(
    run_id: str,
    *,
    type: FeedbackType,
    value: Any,
    user: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """Humanloop-style feedback mapped onto tuneback's keys and kinds.

    * ``rating``: "good"/"bad" (or True/False, up/down) is a ``thumbs`` rating;
    * ``correction``: the better answer, kind ``correction``;
    * ``action``: what the user did with the answer (copied, saved, dismissed…),
      recorded as implicit feedback under the action's name, scored 1 for
      actions that keep the answer and 0 for ones that throw it away;
    * ``comment``: free text.
    """
    extra: dict[str, Any] = {
        "user": user,
        "metadata": dict(metadata) if metadata else None,
        "id": id,
    }
    if type == "rating":
        return feedback_item(run_id=run_id, key="thumbs", value=value, kind="explicit", **extra)
    if type == "correction":
        return feedback_item(
            run_id=run_id, key="correction", correction=str(value), kind="correction", **extra
        )
    if type == "comment":
        return feedback_item(
            run_id=run_id, key="comment", comment=str(value), kind="comment", **extra
        )
    if type == "action":
        action = str(value).strip().lower()
        score = 1.0 if action in POSITIVE_ACTIONS else 0.0 if action in NEGATIVE_ACTIONS else None
        return feedback_item(run_id=run_id, key=action, score=score, kind="implicit", **extra)
    raise ValidationError(
        f"feedback type must be rating, correction, action or comment, not {type!r}"
    )


def humanloop_items(
    run_id: str | Sequence[Mapping[str, Any]],
    type: FeedbackType | None,
    value: Any,
    user: str | None,
) -> list[dict[str, Any]]:
    """One item, or one per entry when a list of ``{run_id, type, value, user}`` is given."""
    if isinstance(run_id, str):
        if type is None:
            raise ValidationError("feedback needs a type: rating, correction, action or comment")
        return [humanloop_item(run_id, type=type, value=value, user=user)]
    return [
        humanloop_item(
            str(entry["run_id"]),
            type=entry["type"],
            value=entry.get("value"),
            user=entry.get("user", user),
            metadata=entry.get("metadata"),
            id=entry.get("id"),
        )
        for entry in run_id
    ]


def without_type(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "type"}


def token_from(data: Mapping[str, Any]) -> FeedbackToken:
    return FeedbackToken(
        token=data["token"],
        url=data["url"],
        run_id=data["run_id"],
        key=data["key"],
        expires_at=datetime.fromisoformat(data["expires_at"]),
    )


def runs_page(data: Mapping[str, Any]) -> RunsPage:
    return RunsPage([Run.model_validate(r) for r in data["data"]], data.get("next_cursor"))


def list_params(**filters: Any) -> dict[str, Any]:
    return _clean(filters)


def ingest_failures(response: httpx.Response) -> list[dict[str, Any]]:
    """The per-item errors of an ingest answer (200: none, 207: some)."""
    if response.status_code == 207:
        errors: list[dict[str, Any]] = response.json().get("errors", [])
        return errors
    return []
