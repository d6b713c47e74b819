"""``tuneback.Client``: log runs and feedback from your app over HTTP.

Writes (``log_run``, ``record_feedback``, ``feedback``, ``compare``) go to a
background batcher by default and return the new item's id at once; they never
raise for a network or server problem. Pass ``background=False`` to send
straight away and get errors raised. Reads and tokens are always sent straight
away. ``transport`` is the one I/O seam: tests pass ``httpx.MockTransport`` or a
transport into the app itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx

from tuneback.client import calls, wire
from tuneback.client.batcher import BackgroundBatcher, BatchStats
from tuneback.client.calls import ClientBase, Flush, Plan, Queue, Send
from tuneback.client.wire import EventsPage, FeedbackToken, FeedbackType, RunsPage
from tuneback.domain import ChatMessage, Run, StoredEvent

T = TypeVar("T")


class Client(ClientBase[httpx.Client, httpx.BaseTransport]):
    """A tuneback server, reached at ``url`` with ``api_key``.

    ``url`` and ``api_key`` default to ``TUNEBACK_URL`` and ``TUNEBACK_API_KEY``.
    Batches go out every ``flush_interval`` seconds, or sooner at
    ``batch_size`` items or ``batch_bytes`` bytes; ``close()`` (also run at exit)
    sends what is left. Options: ``background``, ``batch_size``, ``batch_bytes``,
    ``flush_interval``, ``max_retries``, ``retry_backoff``, ``timeout``,
    ``transport``.
    """

    _batcher: BackgroundBatcher | None = None

    def _connect(
        self,
        url: str,
        headers: dict[str, str],
        timeout: float,
        transport: httpx.BaseTransport | None,
    ) -> httpx.Client:
        return httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)

    # -- plumbing --------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send, retrying network errors and 5xx with backoff; raises what is left."""
        attempt = 0
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                outcome = exc
            wait = calls.retry_wait(attempt, outcome, self.max_retries, self.retry_backoff)
            if wait is None:
                assert isinstance(outcome, httpx.Response)
                return outcome
            time.sleep(wait)
            attempt += 1

    def _run(self, plan: Plan[T]) -> T:
        """Carry out a call's steps, blocking on each."""
        result: Any = None
        try:
            while True:
                step = plan.send(result)
                if isinstance(step, Send):
                    result = self._request(step.method, step.path, **step.options)
                elif isinstance(step, Flush):
                    result = self.flush()
                elif isinstance(step, Queue):
                    result = [self.batcher.add(item) for item in step.items]
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _send_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            response = self._http.post("/api/v1/ingest", json={"items": items})
        except httpx.TransportError as exc:
            return wire.batch_failures(exc, items)
        return wire.batch_failures(response, items)

    @property
    def batcher(self) -> BackgroundBatcher:
        if self._batcher is None:
            self._batcher = BackgroundBatcher(self._send_batch, **self._batch_options)
        return self._batcher

    def _write(self, items: list[dict[str, Any]], background: bool | None) -> list[str]:
        return self._run(calls.write(items, self._in_background(background)))

    @property
    def stats(self) -> BatchStats:
        """How many items were queued, sent, retried and dropped in the background."""
        return self.batcher.stats

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued; True once it has all been delivered or given up on."""
        return True if self._batcher is None else self._batcher.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        if self._batcher is not None:
            self._batcher.close(timeout)
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------

    def log_run(
        self,
        *,
        inputs: str | Sequence[ChatMessage | Mapping[str, Any]] | Mapping[str, Any],
        output: str | None,
        model: str | None = None,
        id: str | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        status: str = "ok",
        error: str | None = None,
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        template_inputs: Mapping[str, Any] | None = None,
        name: str | None = None,
        parent_run_id: str | None = None,
        run_type: str | None = None,
        started_at: datetime | None = None,
        created_at: datetime | None = None,
        background: bool | None = None,
    ) -> str:
        """Log a run that happened in your app; returns its id (made here when not given).

        ``run_type`` is llm (the default), chain, tool or retriever; a run names
        its parent with ``parent_run_id`` to make a run tree. A prompt built from
        a template is logged with the rendered messages as ``inputs`` and the
        variables as ``template_inputs`` (kept in the run's metadata), so exports
        train on the messages.
        """
        item = wire.run_item(
            inputs=inputs,
            output=output,
            id=id,
            model=model,
            user=user,
            conversation_id=conversation_id,
            status=status,
            error=error,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            params=dict(params) if params else None,
            tags=list(tags) if tags else None,
            metadata=dict(metadata) if metadata else None,
            template_inputs=template_inputs,
            name=name,
            parent_run_id=parent_run_id,
            run_type=run_type,
            started_at=started_at,
            created_at=created_at,
        )
        [run_id] = self._write([item], background)
        return run_id

    def record_feedback(
        self,
        run_id: str,
        key: str,
        *,
        value: Any = None,
        score: float | None = None,
        kind: str | None = None,
        comment: str | None = None,
        correction: str | None = None,
        user: str | None = None,
        source: str = "api",
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
        background: bool | None = None,
    ) -> str:
        """Feedback on a run under ``key`` (thumbs, stars, any name); returns its id."""
        item = wire.feedback_item(
            run_id=run_id,
            key=key,
            id=id,
            value=value,
            score=score,
            kind=kind,
            comment=comment,
            correction=correction,
            user=user,
            source=source,
            metadata=dict(metadata) if metadata else None,
        )
        [feedback_id] = self._write([item], background)
        return feedback_id

    def feedback(
        self,
        run_id: str | Sequence[Mapping[str, Any]] | None = None,
        type: FeedbackType | None = None,
        value: Any = None,
        user: str | None = None,
        *,
        data_id: str | None = None,
        background: bool | None = None,
    ) -> list[str]:
        """Humanloop-style feedback: ``type`` rating/correction/action/comment, or a list
        of ``{"run_id", "type", "value", "user"}``; returns the feedback ids.

        ``data_id`` is an alias of ``run_id``, here and in the list's entries.
        """
        return self._write(calls.feedback_items(run_id, type, value, user, data_id), background)

    def compare(
        self,
        run_ids: Sequence[str],
        *,
        outcome: str | None = None,
        ranking: Sequence[str] | None = None,
        user: str | None = None,
        comment: str | None = None,
        prompt: Sequence[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        mode: str | None = None,
        supersedes: str | None = None,
        id: str | None = None,
        background: bool | None = None,
    ) -> str:
        """Record which of two runs was better (``outcome`` a/b/tie/both_bad) or a ranking.

        ``mode`` says how the two were set up (anonymous, named or resample);
        ``supersedes`` names the same user's earlier comparison of these runs
        that this re-vote replaces.
        """
        item = wire.comparison_item(
            run_ids=run_ids,
            outcome=outcome,
            ranking=ranking,
            id=id,
            user=user,
            comment=comment,
            mode=mode,
            supersedes=supersedes,
            prompt=[dict(m) for m in prompt] if prompt else None,
            metadata=dict(metadata) if metadata else None,
        )
        [comparison_id] = self._write([item], background)
        return comparison_id

    def retract(self, feedback_id: str) -> None:
        """Take feedback back (an un-clicked rating); the history keeps it.

        Sent straight away, after whatever is still queued (the feedback itself
        may be), so it raises what the server says.
        """
        self._run(calls.retract(feedback_id))

    # -- conversations ---------------------------------------------------------

    def start_conversation(
        self,
        *,
        id: str | None = None,
        user: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        started_at: datetime | None = None,
    ) -> str:
        """Start a conversation; returns its id (made here when not given, so a retry is safe)."""
        return self._run(
            calls.start_conversation(
                id=id,
                user=user,
                model=model,
                system_prompt=system_prompt,
                title=title,
                tags=list(tags) if tags else None,
                metadata=dict(metadata) if metadata else None,
                started_at=started_at,
            )
        )

    def add_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        id: str | None = None,
        parent_id: str | None = None,
        run_id: str | None = None,
        created_at: datetime | None = None,
    ) -> str:
        """Add a message (``run_id`` links an assistant message to its run); returns its id."""
        return self._run(
            calls.add_message(
                conversation_id,
                role,
                content,
                id=id,
                parent_id=parent_id,
                run_id=run_id,
                created_at=created_at,
            )
        )

    def conversation_feedback(
        self,
        conversation_id: str,
        key: str,
        *,
        message_id: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> str:
        """Feedback on a whole conversation, or on one of its messages; returns its id.

        ``fields`` are :meth:`record_feedback`'s (``value``, ``score``, ``kind``,
        ``comment``, ``correction``, ``user``, ``metadata``). An answer's message
        with a run is rated through its run; a question is rated on the
        conversation with ``message_id`` in the metadata. Sent straight away,
        after what is queued, so it raises what the server says.
        """
        return self._run(calls.conversation_feedback(conversation_id, key, message_id, id, fields))

    def end_conversation(self, conversation_id: str) -> None:
        """Mark a conversation ended (a chat cleared or closed)."""
        self._run(calls.end_conversation(conversation_id))

    # -- direct calls ----------------------------------------------------------

    def add_to_dataset(
        self, run_id: str, dataset: str = "default", *, output: str | None = None
    ) -> str:
        """Add a run to the dataset named ``dataset`` (made when missing); returns the item's id.

        The item's answer is the best known for the run: ``output`` when given
        (recorded first as the run's correction, so the run's history says where
        it came from), else its latest correction, else its own output. A run
        already in the dataset keeps its item. Sent straight away, after what is
        still queued (the run itself may be), so it raises what the server says.
        """
        return self._run(calls.add_to_dataset(run_id, dataset, output))

    def project_stats(
        self, *, period: str = "7d", model: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        """The dashboard's numbers for the key's project over ``period`` (24h, 7d, 30d, 90d or all),
        against the period before: runs, feedback rate, positive rate, mean score,
        latency, per model and per key (``model`` narrows to one model).

        Named apart from :attr:`stats`, which counts this client's own deliveries.
        """
        return self._run(calls.project_stats(period, model, project))

    def events(
        self, after: int = 0, *, limit: int = 1000, types: Sequence[str] | None = None
    ) -> EventsPage:
        """Events with a sequence number above ``after``, oldest first."""
        return self._run(calls.events(after, limit, types))

    def follow(
        self,
        after: int = 0,
        *,
        poll_interval: float = 1.0,
        types: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> Iterator[StoredEvent]:
        """Every event after ``after``, then each new one as it is committed; never ends.

        Keep the last event's ``seq`` to carry on from it after a restart.
        """
        while True:
            page = self.events(after, limit=limit, types=types)
            yield from page.events
            after = page.last_seq
            if len(page.events) < limit:
                time.sleep(poll_interval)

    def create_feedback_token(
        self, run_id: str, key: str = "thumbs", *, expires_in: float = 3 * 3600
    ) -> FeedbackToken:
        """A link that lets anyone rate ``run_id`` on ``key`` until it expires."""
        return self._run(calls.create_feedback_token(run_id, key, expires_in))

    def get_run(self, run_id: str) -> Run:
        return self._run(calls.get_run(run_id))

    def list_runs(
        self,
        *,
        model: str | None = None,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        tag: str | None = None,
        has_feedback: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        score_key: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunsPage:
        return self._run(
            calls.list_runs(
                model=model,
                user=user,
                since=since,
                until=until,
                tag=tag,
                has_feedback=has_feedback,
                min_score=min_score,
                max_score=max_score,
                score_key=score_key,
                limit=limit,
                cursor=cursor,
            )
        )
