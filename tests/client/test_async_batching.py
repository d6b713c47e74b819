"""AsyncClient's background batching against the real app: batches by count and by
interval, flush and aclose, retries with the same ids, and nothing ever raised into
the app for what the server or the network does."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from tests.client.conftest import Sdk
from tuneback import AsyncClient, NotFoundError, ValidationError
from tuneback.errors import ConflictError


class Recording(httpx.AsyncBaseTransport):
    """The app behind a transport that records every ingest batch's ids and can fail
    the first few requests (network errors or a status) before passing them on."""

    def __init__(self, sdk: Sdk, failures: list[int | str] | None = None) -> None:
        self._app = httpx.ASGITransport(app=sdk.app)
        self.failures = list(failures or [])
        self.batches: list[list[str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/ingest":
            self.batches.append([item["id"] for item in json.loads(request.content)["items"]])
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            error = {"error": {"type": "unavailable", "message": "down", "details": None}}
            return httpx.Response(int(failure), json=error)
        return await self._app.handle_async_request(request)


def client(sdk: Sdk, transport: httpx.AsyncBaseTransport, **options: object) -> AsyncClient:
    return AsyncClient(
        "http://tuneback.test",
        sdk.key,
        transport=transport,
        retry_backoff=0.01,
        **options,  # type: ignore[arg-type]
    )


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_writes_go_in_batches_by_count_and_return_at_once(sdk: Sdk) -> None:
    transport = Recording(sdk)
    async with client(sdk, transport, batch_size=10, flush_interval=60) as tb:
        ids = [await tb.log_run(inputs="q", output=str(n), model="m") for n in range(25)]
        assert transport.batches == []  # nothing waited on the server
        await until(lambda: len(transport.batches) == 2)
        await asyncio.sleep(0.2)
        # Two full batches went by themselves; the last five wait for the interval.
        assert transport.batches == [ids[:10], ids[10:20]]
        assert await tb.flush(timeout=10)
        assert transport.batches == [ids[:10], ids[10:20], ids[20:]]
        assert (tb.stats.queued, tb.stats.sent, tb.stats.dropped, tb.stats.retries) == (
            25,
            25,
            0,
            0,
        )
    stored = sdk.store.list_runs("demo")
    assert sorted(r.id for r in stored) == sorted(ids)
    assert {r.model for r in stored} == {"m"}


async def test_a_batch_goes_when_the_interval_has_passed(sdk: Sdk) -> None:
    transport = Recording(sdk)
    async with client(sdk, transport, flush_interval=0.05) as tb:
        run_id = await tb.log_run(inputs="q", output="a")
        [fb_id] = await tb.feedback(run_id, type="rating", value="good", user="ann")
        await until(lambda: bool(transport.batches))
        assert transport.batches == [[run_id, fb_id]]
    assert [f.id for f in sdk.store.feedback_for_run(run_id)] == [fb_id]


async def test_aclose_sends_what_is_left(sdk: Sdk) -> None:
    transport = Recording(sdk)
    tb = client(sdk, transport, flush_interval=60)
    run_id = await tb.log_run(inputs="q", output="a")
    await tb.record_feedback(run_id, "stars", value=5, user="ann")
    await tb.aclose()
    assert [f.score for f in sdk.store.feedback_for_run(run_id)] == [1.0]
    assert (tb.stats.sent, tb.batcher.pending) == (2, 0)


async def test_failed_deliveries_are_retried_with_the_same_ids(sdk: Sdk) -> None:
    transport = Recording(sdk, failures=["connect", 503, 502])
    async with client(sdk, transport, flush_interval=60) as tb:
        run_id = await tb.log_run(inputs="q", output="a")
        assert await tb.flush(timeout=10)
        assert transport.batches == [[run_id]] * 4
        assert (tb.stats.sent, tb.stats.retries, tb.stats.dropped) == (1, 3, 0)
    assert sdk.store.get_run(run_id).output == "a"


async def test_what_cannot_be_sent_is_logged_and_dropped_never_raised(
    sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tuneback.client")
    down = Recording(sdk, failures=[503] * 3)
    async with client(sdk, down, max_retries=2, flush_interval=60) as tb:
        lost = await tb.log_run(inputs="q", output="a")
        assert await tb.flush(timeout=10)
        assert (tb.stats.sent, tb.stats.retries, tb.stats.dropped) == (0, 2, 1)
        assert down.batches == [[lost]] * 3
        # The server refuses one item of a batch (an id already used for a
        # different run): only that one is dropped.
        kept = await tb.log_run(inputs="q", output="b")
        clash = await tb.log_run(inputs="q", output="not b", id=kept)
        other = await tb.log_run(inputs="q", output="c")
        assert clash == kept
        assert await tb.flush(timeout=10)
        assert (tb.stats.sent, tb.stats.dropped) == (2, 2)
    with pytest.raises(NotFoundError):
        sdk.store.get_run(lost)
    assert [sdk.store.get_run(i).output for i in (kept, other)] == ["b", "c"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "tuneback: gave up on 1 items: HTTP 503"
    assert messages[1] == (
        f"tuneback: the server refused run {kept}: id {kept} is already used by a different"
        " run.completed; use a new id for a new object (a retry must send the same content)"
    )


async def test_a_refused_key_drops_the_batch(sdk: Sdk) -> None:
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", "tb_nope", transport=transport) as tb:
        await tb.log_run(inputs="q", output="a")
        assert await tb.flush(timeout=10)
        assert (tb.stats.sent, tb.stats.dropped, tb.stats.retries) == (0, 1, 0)
    assert sdk.store.list_runs("demo") == []


async def test_bad_arguments_raise_at_the_call_and_background_false_raises_server_errors(
    sdk: Sdk,
) -> None:
    transport = Recording(sdk)
    async with client(sdk, transport) as tb:
        with pytest.raises(ValidationError):
            await tb.record_feedback("01ARZ3NDEKTSV4RRFFQ69G5FAV", "thumbs", value="maybe")
        with pytest.raises(ValidationError):
            await tb.feedback(data_id="01ARZ3NDEKTSV4RRFFQ69G5FAV", type="rating", value=7)
        assert tb.stats.queued == 0
        run_id = await tb.log_run(inputs="q", output="a", background=False)
        with pytest.raises(ConflictError, match=f"id {run_id} is already used"):
            await tb.log_run(inputs="q", output="other", id=run_id, background=False)
    assert transport.batches == [[run_id], [run_id]]
