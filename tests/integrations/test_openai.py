"""The OpenAI wrapper: a real ``openai`` client against a loopback OpenAI-compatible
server, logging through the SDK into a real tuneback app."""

from __future__ import annotations

import openai
import pytest

from tests.client.conftest import Sdk
from tests.models.openai_server import FakeOpenAIServer
from tuneback import Client
from tuneback.domain import ChatMessage
from tuneback.integrations.openai import run_id_of, wrap

MESSAGES = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
]


def openai_client(server: FakeOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def test_a_completion_is_logged_with_its_run_id_on_the_response(
    sdk: Sdk, openai_server: FakeOpenAIServer
) -> None:
    tb = sdk.client(flush_interval=60)
    client = wrap(openai_client(openai_server), tb, tags=["app"])
    reply = client.chat.completions.create(
        model="fake-model", messages=MESSAGES, temperature=0.2, max_tokens=50, user="ann"
    )
    assert reply.choices[0].message.content == "Hello from the server"
    run_id = run_id_of(reply)
    assert run_id is not None
    assert run_id == reply.tuneback_run_id
    assert tb.flush(timeout=10)
    run = sdk.store.get_run(run_id)
    assert run.inputs == [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Say hello"),
    ]
    assert (run.output, run.model, run.status, run.user, run.tags) == (
        "Hello from the server",
        "fake-model",
        "ok",
        "ann",
        ["app"],
    )
    assert run.params == {"temperature": 0.2, "max_tokens": 50}
    assert (run.prompt_tokens, run.completion_tokens) == (11, 4)
    assert run.latency_ms is not None
    assert run.latency_ms > 0
    assert run.ttft_ms is None
    assert run.metadata == {"integration": "openai"}
    # The id on the response is the one feedback takes.
    tb.feedback(run_id, type="rating", value="good", user="ann")
    assert tb.flush(timeout=10)
    assert [f.score for f in sdk.store.feedback_for_run(run_id)] == [1.0]
    tb.close()


def test_a_stream_is_logged_when_it_ends(sdk: Sdk, openai_server: FakeOpenAIServer) -> None:
    tb = sdk.client(flush_interval=60)
    client = wrap(openai_client(openai_server), tb)
    stream = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    run_id = run_id_of(stream)
    assert run_id is not None
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the server"
    assert tb.flush(timeout=10)
    run = sdk.store.get_run(run_id)
    assert (run.output, run.status, run.prompt_tokens, run.completion_tokens) == (
        "Hello from the server",
        "ok",
        11,
        4,
    )
    assert run.ttft_ms is not None
    assert run.latency_ms is not None
    assert 0 < run.ttft_ms <= run.latency_ms
    assert run.params == {}
    tb.close()


def test_a_stream_left_early_is_a_cancelled_run(sdk: Sdk, openai_server: FakeOpenAIServer) -> None:
    tb = sdk.client(flush_interval=60)
    client = wrap(openai_client(openai_server), tb)
    with client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}], stream=True
    ) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
    assert tb.flush(timeout=10)
    run = sdk.store.get_run(run_id_of(stream) or "")
    assert (run.status, run.output) == ("cancelled", "Hello")
    tb.close()


def test_a_failed_call_is_logged_and_raised_as_openai_raises_it(
    sdk: Sdk, openai_server: FakeOpenAIServer
) -> None:
    openai_server.behaviour.status = 400
    openai_server.behaviour.error_message = "bad request"
    tb = sdk.client(flush_interval=60)
    client = wrap(openai_client(openai_server), tb)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "Hi"}]
        )
    assert tb.flush(timeout=10)
    [run] = sdk.store.list_runs("demo")
    assert (run.status, run.output, run.model) == ("error", None, "fake-model")
    assert run.error is not None
    assert run.error.startswith("BadRequestError")
    tb.close()


def test_a_log_that_fails_never_breaks_the_call(
    openai_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = Client("http://127.0.0.1:9", background=False, max_retries=0, timeout=1)
    client = wrap(openai_client(openai_server), unreachable)
    reply = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content == "Hello from the server"
    assert run_id_of(reply) is not None
    assert "could not log an OpenAI call" in caplog.text
    unreachable.close()


def test_wrapping_twice_logs_once(sdk: Sdk, openai_server: FakeOpenAIServer) -> None:
    tb = sdk.client(flush_interval=60)
    client = wrap(wrap(openai_client(openai_server), tb), tb)
    client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "Hi"}])
    assert tb.flush(timeout=10)
    assert len(sdk.store.list_runs("demo")) == 1
    tb.close()


async def test_the_async_client_streamed_and_not(sdk: Sdk, openai_server: FakeOpenAIServer) -> None:
    tb = sdk.client(flush_interval=60)
    client = wrap(
        openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0), tb
    )
    reply = await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}]
    )
    stream = await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == "Hello from the server"
    assert tb.flush(timeout=10)
    first, second = (
        sdk.store.get_run(run_id_of(reply) or ""),
        sdk.store.get_run(run_id_of(stream) or ""),
    )
    assert (first.output, first.status) == ("Hello from the server", "ok")
    assert (second.output, second.status) == ("Hello from the server", "ok")
    assert second.ttft_ms is not None
    await client.close()
    tb.close()
