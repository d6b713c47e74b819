"""``hf:`` through huggingface_hub's InferenceClient, against the loopback server."""

from __future__ import annotations

import pytest

from tests.models.model_messages import ask, drain
from tests.models.openai_server import FakeOpenAIServer, unused_port
from tuneback.errors import ModelError
from tuneback.models import ModelAdapter, ModelOptions, Usage, complete, resolve_model

pytest.importorskip("huggingface_hub", reason="huggingface_hub is not installed")


def hf_model(server: FakeOpenAIServer, **options: object) -> ModelAdapter:
    return resolve_model(f"hf:{server.root_url}", **options)


def error_message(model: ModelAdapter) -> str:
    with pytest.raises(ModelError) as caught:
        complete(model, ask("hi"))
    return caught.value.message


def test_streams_text_and_usage_with_the_token_from_the_environment(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    model = hf_model(openai_server)
    options = ModelOptions(temperature=0.7, max_tokens=16)

    chunks, usages = drain(model.stream(ask("Hello?"), options))

    assert chunks == ["Hello", " from", " the", " server"]
    assert usages == [Usage(prompt_tokens=11, completion_tokens=4)]
    assert (model.spec, model.name) == (f"hf:{openai_server.root_url}", openai_server.root_url)
    [received] = openai_server.requests
    assert received.authorization == "Bearer hf_test_token"
    assert received.body["messages"] == [{"role": "user", "content": "Hello?"}]
    assert (received.body["temperature"], received.body["max_tokens"]) == (0.7, 16)
    assert received.body["stream"] is True


def test_refused_token(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 401
    openai_server.behaviour.error_message = "Invalid credentials"

    assert error_message(hf_model(openai_server)) == (
        f"hf:{openai_server.root_url} at {openai_server.root_url}: the API key was refused "
        "(401: Invalid credentials) — set HF_TOKEN to a valid key"
    )


def test_server_error(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 503
    openai_server.behaviour.error_message = "Model is overloaded"

    assert error_message(hf_model(openai_server, token="hf_x")) == (
        f"hf:{openai_server.root_url} at {openai_server.root_url}: the server failed "
        "(HTTP 503: Model is overloaded) — try again, or read the server's log"
    )


def test_context_too_long(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 400
    openai_server.behaviour.error_message = "Input is too long for this model"
    openai_server.behaviour.error_code = "context_length_exceeded"

    assert error_message(hf_model(openai_server)) == (
        f"hf:{openai_server.root_url} at {openai_server.root_url}: the conversation is too "
        "long for the model's context window (Input is too long for this model) — start a new "
        "chat or shorten the messages"
    )


def test_timeout(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.delay = 1.5

    assert error_message(hf_model(openai_server, timeout=0.3)) == (
        f"hf:{openai_server.root_url} at {openai_server.root_url}: no answer within 0.3s — the "
        "server is busy or the model is slow; try again or pass a larger timeout"
    )


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{unused_port()}"

    assert error_message(resolve_model(f"hf:{url}")) == (
        f"hf:{url} at {url}: connection refused — is the server running? Check the endpoint "
        "URL in the hf: spec"
    )


def test_close_mid_stream_ends_the_http_stream(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.chunks = [f"w{i} " for i in range(50)]
    openai_server.behaviour.chunk_delay = 0.02
    stream = hf_model(openai_server).stream(ask("count"), ModelOptions())

    assert [next(stream), next(stream)] == ["w0 ", "w1 "]
    stream.close()

    [record] = openai_server.streams
    assert record.ended.wait(5), "the server kept streaming after the client closed"
    assert not record.finished
    assert record.chunks_sent < 50
