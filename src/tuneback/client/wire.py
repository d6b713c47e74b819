"""What the SDK sends and how it reads answers: item payloads, errors, retry rules.

Shared by :class:`~tuneback.client.Client` and :class:`~tuneback.client.AsyncClient`
so the two never disagree. Every item gets its id here, on the client: a retry
after a timeout sends the same ids, and the server answers it as the first time.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from tuneback.client.batcher import RetryLater
from tuneback.domain import (
    BUILTIN_CONFIGS,
    ChatMessage,
    Run,
    StoredEvent,
    new_id,
    normalize_score,
    parse_payload,
)
from tuneback.domain.feedback import FeedbackKey
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

ROLES = ("system", "user", "assistant", "tool")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_FEEDBACK_KEY: TypeAdapter[str] = TypeAdapter(FeedbackKey)

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
    template_inputs: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A run for the ingest API.

    ``template_inputs`` (the variables a prompt template was filled with) go in
    the run's metadata beside the rendered messages in ``inputs``, so the run
    keeps both and exports train on the messages.
    """
    if template_inputs is not None:
        if not isinstance(template_inputs, Mapping):
            raise ValidationError(
                "template_inputs are the template's variables as a mapping, "
                f"not {type(template_inputs).__name__}"
            )
        if isinstance(inputs, Mapping):
            raise ValidationError(
                "with template_inputs, inputs are the rendered messages the model was sent"
            )
        fields["metadata"] = {
            **(fields.get("metadata") or {}),
            "template_inputs": dict(template_inputs),
        }
    return {
        "type": "run",
        **_clean({"id": id or new_id(), "inputs": messages(inputs), "output": output, **fields}),
    }


def _check_identifier(what: str, value: Any) -> None:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ValidationError(
            f"{what} must be 1..64 letters, digits or _ . : -, not {value!r}",
            details={"field": what, "value": value},
        )


def check_feedback(item: Mapping[str, Any]) -> None:
    """Refuse at the call what the server would refuse later, when the batcher sends it.

    The built-in scales (thumbs, faces, stars) are checked here; a key whose
    scale a project declares is checked by the server, which knows the config.
    """
    _check_identifier("run id", item.get("run_id"))
    check_rating(item)


def check_rating(item: Mapping[str, Any]) -> None:
    """:func:`check_feedback` without the target: the key, the id and the scale."""
    key = feedback_key(item.get("key"))
    if item.get("id") is not None:
        _check_identifier("feedback id", item["id"])
    value, score = item.get("value"), item.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ValidationError(f"score is a number in 0..1, not {score!r}")
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ValidationError(
                f"score is already normalised to 0..1; got {score!r}",
                details={"key": key, "score": score},
            )
    if value is not None and key in BUILTIN_CONFIGS:
        normalize_score(key, value)


def feedback_key(key: object) -> str:
    """``key`` in the one form the server stores; refused here when the server would refuse it."""
    try:
        return str(_FEEDBACK_KEY.validate_python(key))
    except PydanticValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ValidationError(f"feedback key {key!r}: {message}", details={"key": key}) from None


def feedback_item(*, run_id: str, key: str, id: str | None = None, **fields: Any) -> dict[str, Any]:
    check_feedback({"run_id": run_id, "key": key, "id": id, **fields})
    key = feedback_key(key)
    return {
        "type": "feedback",
        **_clean({"id": id or new_id(), "run_id": run_id, "key": key, **fields}),
    }


def conversation_feedback(
    conversation_id: str,
    key: str,
    message_id: str | None,
    id: str | None,
    fields: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The path and body that record feedback on a conversation or one of its messages."""
    path = f"/api/v1/conversations/{path_id('conversation id', conversation_id)}"
    if message_id is not None:
        path += f"/messages/{path_id('message id', message_id)}"
    body = _clean({"id": id or new_id(), "key": feedback_key(key), **fields})
    check_rating(body)
    return f"{path}/feedback", body


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
    run_id: str | Sequence[Mapping[str, Any]] | None,
    type: FeedbackType | None,
    value: Any,
    user: str | None,
    data_id: str | None = None,
) -> list[dict[str, Any]]:
    """One item, or one per entry when a list of ``{run_id, type, value, user}`` is given.

    ``data_id`` (Humanloop's name for the logged datapoint) is accepted wherever
    ``run_id`` is, in the call and in the list's entries.
    """
    if run_id is not None and data_id is not None and run_id != data_id:
        raise ValidationError("give run_id or data_id (its alias), not both")
    target = run_id if run_id is not None else data_id
    if target is None:
        raise ValidationError("feedback needs the run it is about: run_id (or data_id)")
    if isinstance(target, str):
        if type is None:
            raise ValidationError("feedback needs a type: rating, correction, action or comment")
        return [humanloop_item(target, type=type, value=value, user=user)]
    return [_humanloop_entry(n, entry, user) for n, entry in enumerate(target)]


def _humanloop_entry(n: int, entry: Mapping[str, Any], user: str | None) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"feedback entry {n} is not a mapping: {entry!r}")
    unknown = set(entry) - {"run_id", "data_id", "type", "value", "user", "metadata", "id"}
    if unknown:
        raise ValidationError(
            f"feedback entry {n} has unknown fields: {', '.join(sorted(unknown))}",
            details={"index": n, "unknown": sorted(unknown)},
        )
    run_id = entry.get("run_id", entry.get("data_id"))
    if run_id is None:
        raise ValidationError(f"feedback entry {n} needs a run_id (or data_id)")
    if "type" not in entry:
        raise ValidationError(
            f"feedback entry {n} needs a type: rating, correction, action or comment"
        )
    return humanloop_item(
        str(run_id),
        type=entry["type"],
        value=entry.get("value"),
        user=entry.get("user", user),
        metadata=entry.get("metadata"),
        id=entry.get("id"),
    )


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


def dataset_body(name: str) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValidationError(f"a dataset's name is 1-200 characters, not {name!r}")
    return {"name": name}


def dataset_named(listed: Mapping[str, Any], name: str) -> str | None:
    """The id of the dataset called ``name`` in a ``GET /datasets`` answer."""
    for dataset in listed.get("data", []):
        if dataset.get("name") == name:
            return str(dataset["id"])
    return None


def item_of(added: Mapping[str, Any], run_id: str) -> str:
    """The id of ``run_id``'s item in a ``POST /datasets/{id}/items`` answer."""
    for item in added.get("data", []):
        if item.get("source_run_id") == run_id:
            return str(item["id"])
    raise ValidationError(f"run {run_id} was not added to the dataset")


def stats_params(*, period: str, model: str | None, project: str | None) -> dict[str, Any]:
    return _clean({"period": period, "model": model, "project": project})


def ingest_failures(response: httpx.Response) -> list[dict[str, Any]]:
    """The per-item errors of an ingest answer (200: none, 207: some)."""
    if response.status_code == 207:
        errors: list[dict[str, Any]] = response.json().get("errors", [])
        return errors
    return []


def batch_failures(
    response: httpx.Response | httpx.TransportError, items: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """What a batcher makes of one ingest attempt: the items refused, or
    :class:`~tuneback.client.batcher.RetryLater` when it should be sent again."""
    if isinstance(response, httpx.TransportError):
        raise RetryLater(f"{type(response).__name__}: {response}") from response
    if retryable(response.status_code):
        raise RetryLater(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        # The whole request was refused (bad key, too large): retrying cannot help.
        error = _error_of(response)
        return [{"type": item.get("type"), "id": item.get("id"), "error": error} for item in items]
    return ingest_failures(response)


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        error: dict[str, Any] = response.json()["error"]
        return error
    except (ValueError, KeyError, TypeError):
        return {"type": "http_error", "message": f"HTTP {response.status_code}"}


@dataclass(frozen=True)
class EventsPage:
    """Events after an offset, oldest first; pass ``last_seq`` as ``after`` to read on."""

    events: list[StoredEvent]
    last_seq: int


def events_page(data: Mapping[str, Any], after: int) -> EventsPage:
    events = [
        StoredEvent(
            seq=e["seq"],
            id=e["id"],
            type=e["type"],
            version=e["version"],
            project=e["project"],
            recorded_at=datetime.fromisoformat(e["recorded_at"]),
            payload=parse_payload(e["type"], e["version"], e["payload"]),
        )
        for e in data["data"]
    ]
    return EventsPage(events, int(data.get("last_seq", after)))


def conversation_body(**fields: Any) -> dict[str, Any]:
    body = _clean({**fields, "id": fields.get("id") or new_id()})
    _check_identifier("conversation id", body["id"])
    return body


def message_body(conversation_id: str, *, role: str, content: str, **fields: Any) -> dict[str, Any]:
    _check_identifier("conversation id", conversation_id)
    if role not in ROLES:
        raise ValidationError(
            f"a message's role is one of {', '.join(ROLES)}, not {role!r}",
            details={"role": role},
        )
    if not isinstance(content, str):
        raise ValidationError(f"a message's content is text, not {type(content).__name__}")
    body = _clean({**fields, "role": role, "content": content, "id": fields.get("id") or new_id()})
    for name in ("id", "parent_id", "run_id"):
        if name in body:
            _check_identifier(name.replace("_", " "), body[name])
    return body


def path_id(what: str, value: str) -> str:
    """``value`` checked before it goes into a URL path."""
    _check_identifier(what, value)
    return value
