"""``openai:`` against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import pytest

from tests.models.model_messages import ask, drain
from tests.models.openai_server import FakeOpenAIServer, unused_port
from tuneback.errors import ModelError, ModelUnavailableError
from tuneback.models import ModelAdapter, ModelOptions, Usage, complete, resolve_model

pytest.importorskip("openai", reason="the openai package is not installed (pip install openai)")


def openai_model(server: FakeOpenAIServer, **options: object) -> ModelAdapter:
    settings: dict[str, object] = {
        "base_url": server.base_url,
        "api_key": "sk-test",
        "max_retries": 0,
        **options,
    }
    return resolve_model("openai:fake-model", **settings)


def error_message(model: ModelAdapter) -> str:
    with pytest.raises(ModelError) as caught:
        complete(model, ask("hi"))
    return caught.value.message


def test_streams_text_and_server_usage(openai_server: FakeOpenAIServer) -> None:
    model = openai_model(openai_server)
    options = ModelOptions(temperature=0.2, max_tokens=32, top_p=0.9, stop=["END"], seed=3)

    chunks, usages = drain(model.stream(ask("Hello?", system="Be kind."), options))

    assert chunks == ["Hello", " from", " the", " server"]
    assert usages == [Usage(prompt_tokens=11, completion_tokens=4)]
    [received] = openai_server.requests
    assert received.authorization == "Bearer sk-test"
    assert received.body == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hello?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 32,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 3,
    }


def test_without_usage_from_the_server_it_is_estimated(openai_server: FakeOpenAIServer) -> None:
    model = openai_model(openai_server, include_usage=False)

    assert complete(model, ask("Hello?")) == (
        "Hello from the server",
        Usage(prompt_tokens=6, completion_tokens=6, estimated=True),
    )
    assert "stream_options" not in openai_server.requests[0].body


def test_url_and_key_come_from_the_environment(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    model = resolve_model("openai:fake-model", max_retries=0)
    model.start_loading()

    assert complete(model, ask("hi"))[0] == "Hello from the server"
    assert model.status == "ready"
    assert openai_server.requests[0].authorization == "Bearer sk-from-env"


def test_a_local_server_needs_no_key(openai_server: FakeOpenAIServer) -> None:
    model = resolve_model("openai:fake-model", base_url=openai_server.base_url, max_retries=0)

    assert complete(model, ask("hi"))[0] == "Hello from the server"
    assert openai_server.requests[0].authorization == "Bearer sk-no-key-required"


def test_openai_itself_without_a_key_is_unavailable() -> None:
    model = resolve_model("openai:gpt-4o-mini")
    model.start_loading()

    with pytest.raises(ModelUnavailableError) as caught:
        complete(model, ask("hi"))

    assert caught.value.message == (
        "openai:gpt-4o-mini: OPENAI_API_KEY is not set — export it, or point "
        "--base-url / OPENAI_BASE_URL at a local server"
    )
    assert model.status == "error"


def test_refused_key(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    openai_server.behaviour.status = 401
    openai_server.behaviour.error_message = "Incorrect API key provided"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")

    assert error_message(openai_model(openai_server, api_key=None)) == (
        f"openai:fake-model at {openai_server.base_url}: the API key was refused "
        "(401: Incorrect API key provided) — set OPENAI_API_KEY to a valid key"
    )


def test_forbidden_model(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 403
    openai_server.behaviour.error_message = "no access"

    assert error_message(openai_model(openai_server)) == (
        f"openai:fake-model at {openai_server.base_url}: the API key may not use this model "
        "(403: no access) — check the api_key option and the model name"
    )


def test_server_error(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 500
    openai_server.behaviour.error_message = "CUDA out of memory"
    model = openai_model(openai_server)

    with pytest.raises(ModelError) as caught:
        complete(model, ask("hi"))

    assert caught.value.message == (
        f"openai:fake-model at {openai_server.base_url}: the server failed "
        "(HTTP 500: CUDA out of memory) — try again, or read the server's log"
    )
    assert caught.value.details == {
        "backend": "openai:fake-model",
        "url": openai_server.base_url,
        "reason": "server_error",
        "status": 500,
    }
    assert caught.value.status_code == 502


def test_context_too_long(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 400
    openai_server.behaviour.error_message = (
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens."
    )
    openai_server.behaviour.error_code = "context_length_exceeded"

    assert error_message(openai_model(openai_server)) == (
        f"openai:fake-model at {openai_server.base_url}: the conversation is too long for the "
        "model's context window (This model's maximum context length is 8192 tokens. However, "
        "your messages resulted in 9000 tokens.) — start a new chat or shorten the messages"
    )


def test_unknown_model(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.status = 404
    openai_server.behaviour.error_message = "The model `fake-model` does not exist"

    assert error_message(openai_model(openai_server)) == (
        f"openai:fake-model at {openai_server.base_url}: not found (404: The model `fake-model` "
        "does not exist) — check the model name and --base-url / OPENAI_BASE_URL"
    )


def test_timeout(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.delay = 1.5

    assert error_message(openai_model(openai_server, timeout=0.3)) == (
        f"openai:fake-model at {openai_server.base_url}: no answer within 0.3s — the server is "
        "busy or the model is slow; try again or pass a larger timeout"
    )


def test_connection_refused() -> None:
    base_url = f"http://127.0.0.1:{unused_port()}/v1"
    model = resolve_model("openai:gpt-4o-mini", base_url=base_url, max_retries=0)

    assert error_message(model) == (
        f"openai:gpt-4o-mini at {base_url}: connection refused — is the server running? "
        "Check --base-url / OPENAI_BASE_URL"
    )


def test_close_mid_stream_ends_the_http_stream(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.chunks = [f"w{i} " for i in range(50)]
    openai_server.behaviour.chunk_delay = 0.02
    stream = openai_model(openai_server).stream(ask("count"), ModelOptions())

    assert [next(stream), next(stream)] == ["w0 ", "w1 "]
    stream.close()

    [record] = openai_server.streams
    assert record.ended.wait(5), "the server kept streaming after the client closed"
    assert not record.finished
    assert record.chunks_sent < 50


def test_answers_one_after_another_share_one_connection(openai_server: FakeOpenAIServer) -> None:
    """Each answer is read to the end of its body, so the next one reuses the connection
    instead of opening another (against a remote server, a TLS handshake before every
    first token)."""
    model = openai_model(openai_server)

    answers = [complete(model, ask(f"question {n}"))[0] for n in range(4)]

    assert answers == ["Hello from the server"] * 4
    ports = {received.client_port for received in openai_server.requests}
    assert len(openai_server.requests) == 4
    assert len(ports) == 1, f"each answer opened its own connection: {sorted(ports)}"


def test_an_error_event_mid_stream_fails_the_answer(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.error_after = 2
    openai_server.behaviour.error_message = "The server overloaded mid-answer"
    stream = openai_model(openai_server).stream(ask("hi"), ModelOptions())

    assert [next(stream), next(stream)] == ["Hello", " from"]
    with pytest.raises(ModelError) as caught:
        next(stream)

    assert caught.value.message == (
        f"openai:fake-model at {openai_server.base_url}: APIError: The server overloaded mid-answer"
    )
    assert caught.value.details["reason"] == "backend_error"


def test_a_stall_mid_stream_is_a_timeout(openai_server: FakeOpenAIServer) -> None:
    openai_server.behaviour.chunks = ["one ", "two "]
    openai_server.behaviour.chunk_delay = 1.5
    stream = openai_model(openai_server, timeout=0.3).stream(ask("hi"), ModelOptions())

    with pytest.raises(ModelError) as caught:
        list(stream)

    assert caught.value.message == (
        f"openai:fake-model at {openai_server.base_url}: no answer within 0.3s — the server is "
        "busy or the model is slow; try again or pass a larger timeout"
    )


@pytest.mark.parametrize(
    "line", ["data: <html>busy</html>", 'data: {"choices": "busy"}', 'data: {"choices": [1]}']
)
def test_a_line_that_is_not_a_chunk_fails_the_answer(
    openai_server: FakeOpenAIServer, line: str
) -> None:
    openai_server.behaviour.error_after = 1
    openai_server.behaviour.broken_line = f"{line}\n\n"

    assert error_message(openai_model(openai_server)) == (
        f"openai:fake-model at {openai_server.base_url}: "
        f"the server sent a line that is not a chunk: {line!r}"
    )
