"""Each SDK call once, as a plan that :class:`~tuneback.client.Client` runs blocking and
:class:`~tuneback.client.AsyncClient` runs awaiting.

A plan is a generator: it yields a step (:class:`Send` a request, :class:`Flush`
the queue, :class:`Queue` items for the batcher) and is sent the step's result;
what it returns is the call's answer. What a call checks first, what it sends in
which order and how it reads the answers live here, so the two clients cannot
drift apart; they differ only in how they wait.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from tuneback.client import wire
from tuneback.client.wire import EventsPage, FeedbackToken, FeedbackType, RunsPage
from tuneback.domain import Run

DEFAULT_URL = "http://127.0.0.1:8000"

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT")


@dataclass(frozen=True)
class Send:
    """Send a request (retried by the client's rules); the result is the response."""

    method: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Flush:
    """Wait until what is queued has been delivered (or given up on)."""


@dataclass(frozen=True)
class Queue:
    """Hand items to the background batcher."""

    items: list[dict[str, Any]]


Step = Send | Flush | Queue
Plan = Generator[Step, Any, T]


class ClientBase(Generic[HttpT, TransportT]):
    """What both clients are made of: the server, the key, the retry and batch options."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        background: bool = True,
        batch_size: int = 100,
        batch_bytes: int = 1_000_000,
        flush_interval: float = 1.0,
        max_retries: int = 5,
        retry_backoff: float = 0.25,
        timeout: float = 10.0,
        transport: TransportT | None = None,
    ) -> None:
        self.url = (url or os.environ.get("TUNEBACK_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("TUNEBACK_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.background = background
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._batch_options: dict[str, Any] = {
            "max_items": batch_size,
            "max_bytes": batch_bytes,
            "interval": flush_interval,
            "max_retries": max_retries,
            "backoff": lambda attempt: wire.backoff(attempt, retry_backoff),
        }
        self._http: HttpT = self._connect(self.url, headers, timeout, transport)

    def _connect(
        self, url: str, headers: dict[str, str], timeout: float, transport: TransportT | None
    ) -> HttpT:
        raise NotImplementedError

    def _in_background(self, background: bool | None) -> bool:
        return self.background if background is None else background

    def run_url(self, run_id: str) -> str:
        """The run's page on the server, to link to from your app."""
        return f"{self.url}/runs/{wire.path_id('run id', run_id)}"


def retry_wait(
    attempt: int, outcome: httpx.Response | httpx.TransportError, max_retries: int, base: float
) -> float | None:
    """Seconds to wait before sending again, or None when ``outcome`` is the answer.

    Network errors and 5xx (and 408, 429) are retried with backoff; what is
    left after the last retry is raised, as is any other error answer.
    """
    final = attempt >= max_retries
    if isinstance(outcome, httpx.TransportError):
        if final:
            raise outcome
    elif final or not wire.retryable(outcome.status_code):
        wire.raise_for_error(outcome)
        return None
    return wire.backoff(attempt, base)


def write(items: list[dict[str, Any]], background: bool) -> Plan[list[str]]:
    """Queue items, or send them now and raise the first one the server refuses."""
    ids = [str(item["id"]) for item in items]
    if background:
        yield Queue(items)
        return ids
    response = yield Send("POST", "/api/v1/ingest", {"json": {"items": items}})
    for failure in wire.ingest_failures(response):
        error = failure.get("error") or {}
        wire.raise_for_error(httpx.Response(failure.get("status", 422), json={"error": error}))
    return ids


def ingest(items: Sequence[dict[str, Any]]) -> Plan[list[dict[str, Any]]]:
    response = yield Send("POST", "/api/v1/ingest", {"json": {"items": list(items)}})
    return wire.ingest_failures(response)


def feedback_items(
    run_id: str | Sequence[Mapping[str, Any]] | None,
    type: FeedbackType | None,
    value: Any,
    user: str | None,
    data_id: str | None,
) -> list[dict[str, Any]]:
    return wire.humanloop_items(run_id, type, value, user, data_id)


def retract(feedback_id: str) -> Plan[None]:
    # Sent after whatever is still queued: the feedback itself may be.
    path = f"/api/v1/feedback/{wire.path_id('feedback id', feedback_id)}"
    yield Flush()
    yield Send("DELETE", path)


def start_conversation(**fields: Any) -> Plan[str]:
    body = wire.conversation_body(**fields)
    yield Send("POST", "/api/v1/conversations", {"json": body})
    return str(body["id"])


def add_message(conversation_id: str, role: str, content: str, **fields: Any) -> Plan[str]:
    body = wire.message_body(conversation_id, role=role, content=content, **fields)
    yield Send("POST", f"/api/v1/conversations/{conversation_id}/messages", {"json": body})
    return str(body["id"])


def conversation_feedback(
    conversation_id: str,
    key: str,
    message_id: str | None,
    id: str | None,
    fields: dict[str, Any],
) -> Plan[str]:
    path, body = wire.conversation_feedback(conversation_id, key, message_id, id, fields)
    yield Flush()
    yield Send("POST", path, {"json": body})
    return str(body["id"])


def end_conversation(conversation_id: str) -> Plan[None]:
    path = f"/api/v1/conversations/{wire.path_id('conversation id', conversation_id)}/end"
    yield Send("POST", path)


def add_to_dataset(run_id: str, dataset: str, output: str | None) -> Plan[str]:
    wire.path_id("run id", run_id)
    body = wire.dataset_body(dataset)
    yield Flush()
    if output is not None:
        # The run's correction first, so its history says where the item's answer came from.
        yield from write(feedback_items(run_id, "correction", output, None, None), False)
    listed = (yield Send("GET", "/api/v1/datasets")).json()
    dataset_id = wire.dataset_named(listed, dataset)
    if dataset_id is None:
        made = yield Send("POST", "/api/v1/datasets", {"json": body})
        dataset_id = str(made.json()["id"])
    path = f"/api/v1/datasets/{dataset_id}/items"
    added = yield Send("POST", path, {"json": {"run_ids": [run_id]}})
    return wire.item_of(added.json(), run_id)


def project_stats(period: str, model: str | None, project: str | None) -> Plan[dict[str, Any]]:
    params = wire.stats_params(period=period, model=model, project=project)
    data: dict[str, Any] = (yield Send("GET", "/api/v1/stats", {"params": params})).json()
    return data


def events(after: int, limit: int, types: Sequence[str] | None) -> Plan[EventsPage]:
    params: dict[str, Any] = {"after": after, "limit": limit}
    if types:
        params["type"] = list(types)
    response = yield Send("GET", "/api/v1/events", {"params": params})
    return wire.events_page(response.json(), after)


def create_feedback_token(run_id: str, key: str, expires_in: float) -> Plan[FeedbackToken]:
    body = {"run_id": run_id, "key": key, "expires_in": int(expires_in)}
    response = yield Send("POST", "/api/v1/feedback/tokens", {"json": body})
    return wire.token_from(response.json())


def get_run(run_id: str) -> Plan[Run]:
    response = yield Send("GET", f"/api/v1/runs/{run_id}")
    return Run.model_validate(response.json())


def list_runs(**filters: Any) -> Plan[RunsPage]:
    params = wire.list_params(**filters)
    response = yield Send("GET", "/api/v1/runs", {"params": params})
    return wire.runs_page(response.json())


__all__ = [
    "DEFAULT_URL",
    "ClientBase",
    "Flush",
    "Plan",
    "Queue",
    "Send",
    "Step",
    "retry_wait",
    "write",
]
