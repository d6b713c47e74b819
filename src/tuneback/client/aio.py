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
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx

from tuneback.client import calls, wire
from tuneback.client.batcher import AsyncBatcher, BatchStats
from tuneback.client.calls import ClientBase, Flush, Plan, Queue, Send
from tuneback.client.wire import EventsPage, FeedbackToken, FeedbackType, RunsPage
from tuneback.domain import ChatMessage, Run, StoredEvent

T = TypeVar("T")


class AsyncClient(ClientBase[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """A tuneback server, reached at ``url`` with ``api_key``, from async code.

    The options are :class:`~tuneback.client.Client`'s: batches go out every
    ``flush_interval`` seconds, or sooner at ``batch_size`` items or
    ``batch_bytes`` bytes.
    """

    def _connect(
        self,
        url: str,
        headers: dict[str, str],
        timeout: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> httpx.AsyncClient:
        self.batcher = AsyncBatcher(self._send_batch, **self._batch_options)
        return httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                outcome = exc
            wait = calls.retry_wait(attempt, outcome, self.max_retries, self.retry_backoff)
            if wait is None:
                assert isinstance(outcome, httpx.Response)
                return outcome
            await asyncio.sleep(wait)
            attempt += 1

    async def _run(self, plan: Plan[T]) -> T:
        """Carry out a call's steps, awaiting each."""
        result: Any = None
        try:
            while True:
                step = plan.send(result)
                if isinstance(step, Send):
                    result = await self._request(step.method, step.path, **step.options)
                elif isinstance(step, Flush):
                    result = await self.flush()
                elif isinstance(step, Queue):
                    result = [self.batcher.add(item) for item in step.items]
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

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
        return await self._run(calls.ingest(items))

    async def _write(self, items: list[dict[str, Any]], background: bool | None) -> list[str]:
        return await self._run(calls.write(items, self._in_background(background)))

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
        items = calls.feedback_items(run_id, type, value, user, data_id)
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
        await self._run(calls.retract(feedback_id))

    async def start_conversation(self, *, id: str | None = None, **fields: Any) -> str:
        """Start a conversation (same fields as :meth:`Client.start_conversation`)."""
        return await self._run(calls.start_conversation(id=id, **fields))

    async def add_message(
        self, conversation_id: str, role: str, content: str, *, id: str | None = None, **fields: Any
    ) -> str:
        return await self._run(calls.add_message(conversation_id, role, content, id=id, **fields))

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
        return await self._run(
            calls.conversation_feedback(conversation_id, key, message_id, id, fields)
        )

    async def end_conversation(self, conversation_id: str) -> None:
        await self._run(calls.end_conversation(conversation_id))

    async def add_to_dataset(
        self, run_id: str, dataset: str = "default", *, output: str | None = None
    ) -> str:
        """Add a run to a dataset (see :meth:`Client.add_to_dataset`); returns the item's id."""
        return await self._run(calls.add_to_dataset(run_id, dataset, output))

    async def project_stats(
        self, *, period: str = "7d", model: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        """The dashboard's numbers for the key's project (see :meth:`Client.project_stats`)."""
        return await self._run(calls.project_stats(period, model, project))

    async def events(
        self, after: int = 0, *, limit: int = 1000, types: Sequence[str] | None = None
    ) -> EventsPage:
        return await self._run(calls.events(after, limit, types))

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
        return await self._run(calls.create_feedback_token(run_id, key, expires_in))

    async def get_run(self, run_id: str) -> Run:
        return await self._run(calls.get_run(run_id))

    async def list_runs(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        **filters: Any,
    ) -> RunsPage:
        return await self._run(
            calls.list_runs(limit=limit, cursor=cursor, since=since, until=until, **filters)
        )
