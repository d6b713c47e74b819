"""The official openai client, pointed at tuneback, talking to an upstream on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.client.servers import LiveServer
from tests.proxy.conftest import Proxy
from tuneback.config import Settings
from tuneback.domain import ChatMessage, Run
from tuneback.models import EchoModel
from tuneback.models.base import ModelOptions, Usage
from tuneback.server import create_app
from tuneback.services.keys import KeyService
from tuneback.storage import Store

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def _wait_for_run(proxy: Proxy, run_id: str, timeout: float = 10) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proxy.store.get_run(run_id)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_a_completion_is_answered_by_upstream_and_recorded(proxy: Proxy) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="fake-model",
        messages=QUESTION,
        temperature=0.2,
        user="ann",  # type: ignore[arg-type]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the server"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 4)
    run_id = raw.headers["x-tuneback-run-id"]
    assert completion.id == run_id
    run = proxy.store.get_run(run_id)
    assert run.project == "demo"
    assert run.model == "openai:fake-model"
    assert run.inputs == [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Say hello"),
    ]
    assert (run.output, run.status, run.user) == ("Hello from the server", "ok", "ann")
    assert (run.prompt_tokens, run.completion_tokens) == (11, 4)
    assert run.params == {"temperature": 0.2, "requested_model": "fake-model"}
    sent = proxy.upstream.requests[0].body
    assert (sent["model"], sent["messages"], sent["temperature"]) == ("fake-model", QUESTION, 0.2)
    # One more call attaches feedback, with no API key.
    rated = httpx.post(raw.headers["x-tuneback-feedback-url"], json={"value": "up"})
    assert rated.status_code == 201
    assert [f.score for f in proxy.store.feedback_for_run(run_id)] == [1.0]


def test_a_stream_with_usage(proxy: Proxy) -> None:
    proxy.upstream.behaviour.chunks = ["One", " two", " three"]
    with proxy.client().chat.completions.with_streaming_response.create(
        model="openai:fake-model",
        messages=QUESTION,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    ) as raw:
        run_id = raw.headers["x-tuneback-run-id"]
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "One two three"
    assert {c.id for c in chunks} == {run_id}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 15
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    run = proxy.store.get_run(run_id)
    assert (run.output, run.status, run.completion_tokens) == ("One two three", "ok", 4)
    assert run.ttft_ms is not None
    assert run.latency_ms is not None
    assert run.ttft_ms <= run.latency_ms
    assert proxy.upstream.requests[0].body["stream_options"] == {"include_usage": True}


def test_a_stream_without_usage_has_no_usage_chunk(proxy: Proxy) -> None:
    stream = proxy.client().chat.completions.create(
        model="fake-model", messages=QUESTION, stream=True
    )  # type: ignore[arg-type]
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (401, openai.AuthenticationError),
    ],
)
def test_upstream_errors_pass_through(proxy: Proxy, status: int, error: type[Exception]) -> None:
    proxy.upstream.behaviour.status = status
    proxy.upstream.behaviour.error_message = "upstream says no"
    for stream in (False, True):
        with pytest.raises(error) as caught:
            proxy.client().chat.completions.create(
                model="fake-model", messages=QUESTION, stream=stream
            )  # type: ignore[call-overload]
        assert caught.value.status_code == status  # type: ignore[attr-defined]
        assert "upstream says no" in str(caught.value)
    runs = proxy.store.list_runs("demo")
    assert [(r.status, "upstream says no" in (r.error or "")) for r in runs] == [
        ("error", True)
    ] * 2


def test_a_dead_upstream_is_a_502(proxy: Proxy) -> None:
    model = proxy.upstream
    model.stop()
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            proxy.client().chat.completions.create(model="fake-model", messages=QUESTION)  # type: ignore[arg-type]
        assert caught.value.status_code == 502
    finally:
        model.start()


def test_conversations_group_by_user_or_header(proxy: Proxy) -> None:
    client = proxy.client()
    first = client.chat.completions.create(model="fake-model", messages=QUESTION, user="ann")  # type: ignore[arg-type]
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]
    second = client.chat.completions.create(model="fake-model", messages=follow_up, user="ann")  # type: ignore[arg-type]
    other_user = client.chat.completions.create(model="fake-model", messages=QUESTION, user="bob")  # type: ignore[arg-type]
    named = client.chat.completions.create(
        model="fake-model",
        messages=QUESTION,
        extra_headers={"X-Tuneback-Conversation": "my-chat-1"},  # type: ignore[arg-type]
    )
    runs = {r: proxy.store.get_run(r) for r in (first.id, second.id, other_user.id, named.id)}
    assert runs[first.id].conversation_id == runs[second.id].conversation_id is not None
    assert runs[other_user.id].conversation_id not in (None, runs[first.id].conversation_id)
    assert runs[named.id].conversation_id == "my-chat-1"
    conversation = proxy.store.get_conversation(runs[first.id].conversation_id or "")
    assert (conversation.user, conversation.system_prompt, conversation.title) == (
        "ann",
        "Be brief.",
        "Say hello",
    )
    assert [r.id for r in proxy.store.conversation_runs(conversation.id)] == [first.id, second.id]


def test_models_auth_and_unknown_models(proxy: Proxy) -> None:
    assert [m.id for m in proxy.client().models.list()] == ["openai:fake-model", "echo"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="tb_wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as caught:
        proxy.client().chat.completions.create(model="gpt-nope", messages=QUESTION)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        proxy.client().chat.completions.create(
            model="echo",
            messages=QUESTION,
            tools=[{"type": "function", "function": {"name": "f"}}],  # type: ignore[arg-type,list-item]
        )
    echoed = proxy.client().chat.completions.create(model="echo", messages=QUESTION)  # type: ignore[arg-type]
    assert proxy.store.get_run(echoed.id).model == "echo"


def test_a_client_that_hangs_up_cancels_the_run(proxy: Proxy) -> None:
    proxy.upstream.behaviour.chunks = [f"w{n} " for n in range(200)]
    proxy.upstream.behaviour.chunk_delay = 0.02
    with httpx.stream(
        "POST",
        f"{proxy.url}/v1/chat/completions",
        json={"model": "fake-model", "messages": QUESTION, "stream": True},
        headers={"Authorization": f"Bearer {proxy.key}"},
        timeout=10,
    ) as response:
        run_id = response.headers["x-tuneback-run-id"]
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
    run = _wait_for_run(proxy, run_id)
    assert run.status == "cancelled"
    assert run.output
    assert run.output.startswith("w0 ")
    assert proxy.upstream.streams[0].ended.wait(10)
    assert not proxy.upstream.streams[0].finished


class _Noting(EchoModel):
    """Echo that notes whether each reply was drained on the server's event loop."""

    def __init__(self, *, blocks: bool) -> None:
        super().__init__(spec=f"noting:{'blocks' if blocks else 'instant'}")
        self._blocks = blocks
        self.on_loop: list[bool] = []

    @property
    def blocks(self) -> bool:
        return self._blocks

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        yield from super()._generate(messages, options)


def test_a_model_that_never_blocks_answers_on_the_loop_and_others_in_a_thread(
    store: Store,
) -> None:
    instant, blocking = _Noting(blocks=False), _Noting(blocks=True)
    app = create_app(Settings(database_url=str(store.url)), store=store, models=[instant, blocking])
    key = KeyService(store).create("demo").key
    server = LiveServer(app)
    server.start()
    try:
        for model in ("noting:instant", "noting:blocks"):
            answer = httpx.post(
                f"{server.url}/v1/chat/completions",
                json={"model": model, "messages": QUESTION},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == "Say hello"
            assert store.get_run(answer.headers["x-tuneback-run-id"]).output == "Say hello"
    finally:
        server.stop()
    assert (instant.on_loop, blocking.on_loop) == ([True], [False])
    assert not EchoModel().blocks
    assert EchoModel(delay=0.05).blocks
