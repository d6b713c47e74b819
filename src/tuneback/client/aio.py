"""``tuneback.AsyncClient``: the same calls as :class:`~tuneback.client.Client`, awaited.

Writes (``log_run``, ``record_feedback``, ``feedback``, ``compare``) go to a
background batcher by default — a task on the app's event loop that follows the
sync client's batching rules — and return the new item's id at once; they never
raise for a network or server problem: what cannot be delivered after the
retries is logged and counted in ``stats``. Arguments the server would refuse
raise at the call. ``background=False`` sends straight away and raises what the
server says; ``ingest()`` sends many items in one call. Call ``flush()`` to
wait for delivery and ``aclose()`` (or ``async with``) to send what is left.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from tuneback.client import wire
from tuneback.client.batcher import AsyncBatcher, BatchStats
from tuneback.client.sync import DEFAULT_URL
from tuneback.client.wire import EventsPage, FeedbackToken, FeedbackType, RunsPage
from tuneback.domain import ChatMessage, Run, StoredEvent


class AsyncClient:
    """A tuneback server, reached at ``url`` with ``api_key``, from async code.

    The options are :class:`~tuneback.client.Client`'s: batches go out every
    ``flush_interval`` seconds, or sooner at ``batch_size`` items or
    ``batch_bytes`` bytes.
    """

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("TUNEBACK_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("TUNEBACK_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.background = background
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self.batcher = AsyncBatcher(
            self._send_batch,
            max_items=batch_size,
            max_bytes=batch_bytes,
            interval=flush_interval,
            max_retries=max_retries,
            backoff=lambda attempt: wire.backoff(attempt, retry_backoff),
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if attempt >= self.max_retries:
                    raise
            else:
                if not wire.retryable(response.status_code) or attempt >= self.max_retries:
                    wire.raise_for_error(response)
                    return response
            await asyncio.sleep(wire.backoff(attempt, self.retry_backoff))
            attempt += 1

    async def _send_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            response = await self._http.post("/api/v1/ingest", json={"items": items})
        except httpx.TransportError as exc:
            return wire.batch_failures(exc, items)
        return wire.batch_failures(response, items)

    @property
    def stats(self) -> BatchStats:
        """How many items were queued, sent, retried and dropped in the background."""
        return self.batcher.stats

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued; True once it has all been delivered or given up on."""
        return await self.batcher.flush(timeout)

    async def aclose(self, timeout: float | None = 30.0) -> None:
        """Send what is queued (waiting up to ``timeout`` seconds), then close."""
        await self.batcher.close(timeout)
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def ingest(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send items made by :mod:`tuneback.client.wire`; returns the per-item errors."""
        response = await self._request("POST", "/api/v1/ingest", json={"items": list(items)})
        return wire.ingest_failures(response)

    async def _write(self, items: list[dict[str, Any]], background: bool | None) -> list[str]:
        ids = [str(item["id"]) for item in items]
        if self.background if background is None else background:
            for item in items:
                self.batcher.add(item)
            return ids
        for failure in await self.ingest(items):
            wire.raise_for_error(
                httpx.Response(failure.get("status", 422), json={"error": failure.get("error")})
            )
        return ids

    async def log_run(
        self,
        *,
        inputs: str | Sequence[ChatMessage | Mapping[str, Any]] | Mapping[str, Any],
        output: str | None,
        model: str | None = None,
        id: str | None = None,
        background: bool | None = None,
        **fields: Any,
    ) -> str:
        """Log a run (same fields as :meth:`Client.log_run`); returns its id."""
        item = wire.run_item(inputs=inputs, output=output, id=id, model=model, **fields)
        [run_id] = await self._write([item], background)
        return run_id

    async def record_feedback(
        self,
        run_id: str,
        key: str,
        *,
        id: str | None = None,
        background: bool | None = None,
        **fields: Any,
    ) -> str:
        """Record feedback (same fields as :meth:`Client.record_feedback`); returns its id."""
        fields.setdefault("source", "api")
        item = wire.feedback_item(run_id=run_id, key=key, id=id, **fields)
        [feedback_id] = await self._write([item], background)
        return feedback_id

    async def feedback(
        self,
        run_id: str | Sequence[Mapping[str, Any]] | None = None,
        type: FeedbackType | None = None,
        value: Any = None,
        user: str | None = None,
        *,
        data_id: str | None = None,
        background: bool | None = None,
    ) -> list[str]:
        """Humanloop-style feedback (see :meth:`Client.feedback`); returns the ids."""
        items = wire.humanloop_items(run_id, type, value, user, data_id)
        return await self._write(items, background)

    async def compare(
        self,
        run_ids: Sequence[str],
        *,
        outcome: str | None = None,
        ranking: Sequence[str] | None = None,
        id: str | None = None,
        background: bool | None = None,
        **fields: Any,
    ) -> str:
        item = wire.comparison_item(
            run_ids=run_ids, outcome=outcome, ranking=ranking, id=id, **fields
        )
        [comparison_id] = await self._write([item], background)
        return comparison_id

    async def retract(self, feedback_id: str) -> None:
        """Take feedback back; the history keeps it.

        Sent straight away, after whatever is still queued (the feedback itself
        may be), so it raises what the server says.
        """
        path = f"/api/v1/feedback/{wire.path_id('feedback id', feedback_id)}"
        await self.flush()
        await self._request("DELETE", path)

    async def start_conversation(self, *, id: str | None = None, **fields: Any) -> str:
        """Start a conversation (same fields as :meth:`Client.start_conversation`)."""
        body = wire.conversation_body(id=id, **fields)
        await self._request("POST", "/api/v1/conversations", json=body)
        return str(body["id"])

    async def add_message(
        self, conversation_id: str, role: str, content: str, *, id: str | None = None, **fields: Any
    ) -> str:
        body = wire.message_body(conversation_id, role=role, content=content, id=id, **fields)
        await self._request("POST", f"/api/v1/conversations/{conversation_id}/messages", json=body)
        return str(body["id"])

    async def conversation_feedback(
        self,
        conversation_id: str,
        key: str,
        *,
        message_id: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> str:
        """Feedback on a conversation or one of its messages; returns its id.

        See :meth:`Client.conversation_feedback`.
        """
        path, body = wire.conversation_feedback(conversation_id, key, message_id, id, fields)
        await self.flush()
        await self._request("POST", path, json=body)
        return str(body["id"])

    async def end_conversation(self, conversation_id: str) -> None:
        path = f"/api/v1/conversations/{wire.path_id('conversation id', conversation_id)}/end"
        await self._request("POST", path)

    async def add_to_dataset(
        self, run_id: str, dataset: str = "default", *, output: str | None = None
    ) -> str:
        """Add a run to a dataset (see :meth:`Client.add_to_dataset`); returns the item's id."""
        wire.path_id("run id", run_id)
        body = wire.dataset_body(dataset)
        await self.flush()
        if output is not None:
            await self.feedback(run_id, type="correction", value=output, background=False)
        listed = (await self._request("GET", "/api/v1/datasets")).json()
        dataset_id = wire.dataset_named(listed, dataset)
        if dataset_id is None:
            made = await self._request("POST", "/api/v1/datasets", json=body)
            dataset_id = str(made.json()["id"])
        path = f"/api/v1/datasets/{dataset_id}/items"
        added = await self._request("POST", path, json={"run_ids": [run_id]})
        return wire.item_of(added.json(), run_id)

    async def project_stats(
        self, *, period: str = "7d", model: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        """The dashboard's numbers for the key's project (see :meth:`Client.project_stats`)."""
        params = wire.stats_params(period=period, model=model, project=project)
        response = await self._request("GET", "/api/v1/stats", params=params)
        data: dict[str, Any] = response.json()
        return data

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{wire.path_id('run id', run_id)}"

    async def events(
        self, after: int = 0, *, limit: int = 1000, types: Sequence[str] | None = None
    ) -> EventsPage:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if types:
            params["type"] = list(types)
        response = await self._request("GET", "/api/v1/events", params=params)
        return wire.events_page(response.json(), after)

    async def follow(
        self,
        after: int = 0,
        *,
        poll_interval: float = 1.0,
        types: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> AsyncIterator[StoredEvent]:
        """Every event after ``after``, then each new one as it is committed; never ends."""
        while True:
            page = await self.events(after, limit=limit, types=types)
            for event in page.events:
                yield event
            after = page.last_seq
            if len(page.events) < limit:
                await asyncio.sleep(poll_interval)

    async def create_feedback_token(
        self, run_id: str, key: str = "thumbs", *, expires_in: float = 3 * 3600
    ) -> FeedbackToken:
        body = {"run_id": run_id, "key": key, "expires_in": int(expires_in)}
        response = await self._request("POST", "/api/v1/feedback/tokens", json=body)
        return wire.token_from(response.json())

    async def get_run(self, run_id: str) -> Run:
        response = await self._request("GET", f"/api/v1/runs/{run_id}")
        return Run.model_validate(response.json())

    async def list_runs(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        **filters: Any,
    ) -> RunsPage:
        params = wire.list_params(limit=limit, cursor=cursor, since=since, until=until, **filters)
        response = await self._request("GET", "/api/v1/runs", params=params)
        return wire.runs_page(response.json())
