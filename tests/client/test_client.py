"""The SDK against the real app: what it sends is what the store holds."""

from __future__ import annotations

import httpx
import pytest

from tests.client.conftest import Sdk
from tuneback import AsyncClient, Client, NotFoundError, ValidationError
from tuneback.client import ApiError


def test_log_run_and_feedback_in_the_background(sdk: Sdk) -> None:
    with sdk.client(flush_interval=60) as client:
        run_id = client.log_run(
            inputs=[{"role": "user", "content": "Hi"}],
            output="Hello!",
            model="m",
            user="ann",
            latency_ms=12.5,
            tags=["greeting"],
        )
        fb_id = client.record_feedback(run_id, "stars", value=4, user="ann", comment="nice")
        assert client.flush(timeout=10)
        assert client.stats.sent == 2
        assert client.stats.dropped == 0
    run = sdk.store.get_run(run_id)
    assert (run.output, run.model, run.user, run.tags, run.project) == (
        "Hello!",
        "m",
        "ann",
        ["greeting"],
        "demo",
    )
    feedback = sdk.store.get_feedback(fb_id)
    assert (feedback.score, feedback.comment, feedback.source) == (0.75, "nice", "api")


def test_batches_go_by_count(sdk: Sdk) -> None:
    client = sdk.client(batch_size=10, flush_interval=60)
    before = sdk.transport.requests
    for n in range(25):
        client.log_run(inputs=f"q{n}", output=f"a{n}")
    assert client.flush(timeout=10)
    # 10 + 10 by count, the last 5 by flush.
    assert sdk.transport.requests - before == 3
    assert len(sdk.store.list_runs("demo")) == 25
    client.close()


def test_batches_go_by_bytes(sdk: Sdk) -> None:
    client = sdk.client(batch_size=1000, batch_bytes=3000, flush_interval=60)
    before = sdk.transport.requests
    for _ in range(6):
        client.log_run(inputs="q", output="x" * 1000)
    assert client.flush(timeout=10)
    assert sdk.transport.requests - before == 3
    client.close()


def test_batches_go_by_interval(sdk: Sdk) -> None:
    import time

    client = sdk.client(batch_size=1000, flush_interval=0.1)
    run_id = client.log_run(inputs="q", output="a")
    deadline = time.monotonic() + 5
    while client.stats.sent == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sdk.store.get_run(run_id).output == "a"
    client.close()


def test_humanloop_style_feedback(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    ids = client.feedback(
        [
            {"run_id": run_id, "type": "rating", "value": "good", "user": "ann"},
            {"run_id": run_id, "type": "correction", "value": "better answer", "user": "ann"},
            {"run_id": run_id, "type": "action", "value": "copied", "user": "ann"},
            {"run_id": run_id, "type": "action", "value": "dismissed", "user": "bob"},
        ]
    )
    ids += client.feedback(run_id, type="rating", value="bad", user="bob")
    stored = {f.id: f for f in sdk.store.feedback_for_run(run_id)}
    assert [
        (stored[i].key, stored[i].kind, stored[i].score, stored[i].correction) for i in ids
    ] == [
        ("thumbs", "explicit", 1.0, None),
        ("correction", "correction", None, "better answer"),
        ("copied", "implicit", 1.0, None),
        ("dismissed", "implicit", 0.0, None),
        ("thumbs", "explicit", 0.0, None),
    ]


def test_direct_writes_raise_what_the_server_says(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    with pytest.raises(ValidationError, match="stars must be between 1 and 5"):
        client.record_feedback(run_id, "stars", value=9)
    with pytest.raises(NotFoundError):
        client.get_run("missing")


def test_background_refusals_are_logged_and_counted_not_raised(
    sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    # A bad value is refused at the call; only the server can know the run is missing.
    client = sdk.client(flush_interval=60)
    client.log_run(inputs="q", output="a")
    client.record_feedback("no-such-run", "stars", value=4)
    assert client.flush(timeout=10)
    assert (client.stats.sent, client.stats.dropped) == (1, 1)
    assert "no-such-run" in caplog.text
    client.close()


def test_compare_list_runs_and_tokens(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    a = client.log_run(inputs="q", output="short", model="m1", tags=["t"])
    b = client.log_run(inputs="q", output="long", model="m2")
    comparison_id = client.compare([a, b], outcome="b", user="ann")
    assert sdk.store.get_comparison(comparison_id).winner.run_id == b  # type: ignore[union-attr]
    page = client.list_runs(model="m1")
    assert [r.id for r in page.runs] == [a]
    assert page.next_cursor is None
    token = client.create_feedback_token(a, "thumbs")
    assert token.run_id == a
    anonymous = httpx.Client(transport=sdk.transport)
    assert anonymous.post(token.url, json={"value": "up"}).status_code == 201
    assert [f.score for f in sdk.store.feedback_for_run(a)] == [1.0]


def test_a_bad_key_is_an_api_error(sdk: Sdk) -> None:
    client = Client("http://tuneback.test", "tb_nope", transport=sdk.transport, background=False)
    with pytest.raises(ApiError) as caught:
        client.list_runs()
    assert caught.value.status == 401


def test_server_errors_are_retried_with_the_same_ids(sdk: Sdk) -> None:
    failures = iter([503, 502])
    seen_ids: list[list[str]] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        import json

        seen_ids.append([i["id"] for i in json.loads(request.content)["items"]])
        status = next(failures, None)
        if status is not None:
            return httpx.Response(
                status, json={"error": {"type": "x", "message": "down", "details": None}}
            )
        return sdk.transport.handle_request(request)

    client = Client(
        "http://tuneback.test",
        sdk.key,
        transport=httpx.MockTransport(flaky),
        flush_interval=60,
        retry_backoff=0.01,
    )
    run_id = client.log_run(inputs="q", output="a")
    assert client.flush(timeout=10)
    assert seen_ids == [[run_id]] * 3
    assert (client.stats.sent, client.stats.retries, client.stats.dropped) == (1, 2, 0)
    client.close()


async def test_the_async_client(sdk: Sdk) -> None:
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", sdk.key, transport=transport) as client:
        run_id = await client.log_run(inputs="q", output="a", model="m")
        await client.record_feedback(run_id, "thumbs", value="up", user="ann")
        await client.feedback(run_id, type="action", value="saved", user="ann")
        other = await client.log_run(inputs="q", output="b")
        await client.compare([run_id, other], outcome="a")
        assert await client.flush(timeout=10)
        assert (client.stats.sent, client.stats.dropped) == (5, 0)
        page = await client.list_runs(has_feedback="thumbs")
        assert [r.id for r in page.runs] == [run_id]
        token = await client.create_feedback_token(run_id)
        assert token.key == "thumbs"
        with pytest.raises(ValidationError):
            await client.record_feedback(run_id, "faces", value="🦄")
    assert {f.key for f in sdk.store.feedback_for_run(run_id)} == {"thumbs", "saved"}
