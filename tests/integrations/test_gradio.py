"""The Gradio tracker: a real ChatInterface launched on loopback, driven with gradio_client
over its queue, logging to a real tuneback server; the assertions read tuneback's store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client as GradioClient
from gradio_client.exceptions import AppError

from tests.client.conftest import Sdk
from tests.client.servers import free_port, serving
from tuneback import Client
from tuneback.domain import ChatMessage
from tuneback.integrations.gradio import Tracker, Turn, track


def echo(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
    words = f"You said: {message}".split(" ")
    for end in range(1, len(words) + 1):
        yield " ".join(words[:end])


@contextmanager
def launched(demo: gr.Blocks) -> Iterator[GradioClient]:
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield GradioClient(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def trigger(gc: GradioClient, api_name: str, *data: Any, event_data: Any = None) -> Any:
    """Send an event as the browser does, with its event data (a like's index and value).

    ``gradio_client``'s ``predict`` has no way to pass event data; the endpoint's
    own sender, which ``predict`` uses, sends it over the same queue.
    """
    [index] = [d["id"] for d in gc.config["dependencies"] if d["api_name"] == api_name.lstrip("/")]
    send = gc.endpoints[index].make_end_to_end_fn(gc.new_helper(index))
    return send(*data, event_data=event_data)


def shown(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Chatbot's value as the browser sends it back."""
    return [
        {
            "role": m["role"],
            "content": [{"type": "text", "text": m["content"]}],
            **({"metadata": m["metadata"]} if "metadata" in m else {}),
        }
        for m in chat
    ]


class Chat:
    """One browser session: what it asks, what it shows."""

    def __init__(self, gc: GradioClient, api_name: str) -> None:
        self.gc = gc
        self.api_name = api_name
        self.messages: list[dict[str, Any]] = []

    def ask(self, question: str, *extra: Any) -> Turn:
        answer = self.gc.predict(question, *extra, api_name=self.api_name)
        self.messages += [{"role": "user", "content": question}, answer]
        turn = Turn.decode(answer["metadata"]["id"])
        assert turn is not None
        return turn

    def event(self, name: str, index: int, **data: Any) -> Any:
        value = self.messages[index]["content"]
        event = {"index": index, "value": value, **data}
        return trigger(self.gc, f"/tuneback_{name}", shown(self.messages), event_data=event)


def history(sdk: Sdk, run_id: str) -> list[tuple[str, float | None, str | None, bool]]:
    """(key, score, comment, current) for all feedback on a run, oldest first."""
    return [
        (f.key, f.score, f.comment, f.current)
        for f in sdk.store.feedback_for_run(run_id, history=True)
    ]


def tracked(
    sdk: Sdk, url: str, fn: Any, *, comment: bool = True, **options: Any
) -> tuple[gr.ChatInterface, Tracker]:
    demo = track(
        gr.ChatInterface(fn, api_name="chat", **options),
        Client(url, sdk.key),
        model="echo-bot",
        user="ann",
        comment=comment,
    )
    tracker = demo.tuneback  # type: ignore[attr-defined]
    assert isinstance(tracker, Tracker)
    return demo, tracker


def test_answers_are_runs_in_a_conversation_and_likes_are_ratings(sdk: Sdk) -> None:
    with serving(sdk.app) as server:
        demo, tracker = tracked(sdk, server.url, echo)
        with launched(demo) as gc:
            chat = Chat(gc, "/chat")
            first = chat.ask("Hi")
            second = chat.ask("Why?")
            assert chat.messages[1]["content"] == "You said: Hi"
            chat.event("like", 1, liked=True)
            chat.event("like", 1, liked=False)
            chat.event("like", 3, liked=True)
            chat.event("like", 3, liked="")  # clicked off
            chat.event("like", 1, liked="Inaccurate")  # one of the Chatbot's feedback options
            assert tracker.flush(timeout=10)
        tracker.client.close()

    assert first.conversation_id == second.conversation_id
    conversation = sdk.store.get_conversation(first.conversation_id or "")
    assert (conversation.user, conversation.model, conversation.title) == ("ann", "echo-bot", "Hi")
    assert conversation.metadata == {"integration": "gradio"}
    messages = sdk.store.conversation_messages(conversation.id)
    assert [(m.role, m.content, m.run_id) for m in messages] == [
        ("user", "Hi", None),
        ("assistant", "You said: Hi", first.run_id),
        ("user", "Why?", None),
        ("assistant", "You said: Why?", second.run_id),
    ]
    assert [m.parent_id for m in messages] == [None] + [m.id for m in messages[:-1]]
    assert [m.id for m in messages[1::2]] == [first.message_id, second.message_id]

    run = sdk.store.get_run(second.run_id)
    assert run.inputs == [
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="You said: Hi"),
        ChatMessage(role="user", content="Why?"),
    ]
    assert (run.output, run.model, run.user, run.status) == (
        "You said: Why?",
        "echo-bot",
        "ann",
        "ok",
    )
    assert (run.conversation_id, run.metadata) == (conversation.id, {"integration": "gradio"})
    assert run.latency_ms is not None
    assert run.ttft_ms is not None
    assert 0 <= run.ttft_ms <= run.latency_ms

    assert history(sdk, first.run_id) == [
        ("thumbs", 1.0, None, False),
        ("thumbs", 0.0, None, True),
        ("flag", None, "Inaccurate", True),
    ]
    assert history(sdk, second.run_id) == [("thumbs", 1.0, None, False)]
    assert {
        (f.user, f.source)
        for r in (first, second)
        for f in sdk.store.feedback_for_run(r.run_id, history=True)
    } == {("ann", "end_user")}


def test_a_comment_on_the_selected_answer_retry_copy_undo_and_clear(sdk: Sdk) -> None:
    with serving(sdk.app) as server:
        demo, tracker = tracked(sdk, server.url, echo)
        with launched(demo) as gc:
            chat = Chat(gc, "/chat")
            first = chat.ask("Hi")
            second = chat.ask("Why?")
            trigger(gc, "/tuneback_select", event_data={"index": 1, "value": "You said: Hi"})
            sent = trigger(gc, "/tuneback_comment", "Too short", shown(chat.messages))
            assert sent == {
                "__type__": "update",
                "value": "",
                "placeholder": "Thanks, sent. Add more on another answer",
            }
            # Without a pick the last answer is meant.
            trigger(gc, "/tuneback_select", event_data={"index": None, "value": None})
            trigger(gc, "/tuneback_comment", "  ", shown(chat.messages))
            chat.event("copy", 3)
            chat.event("copy", 2)  # a copied question is no feedback
            chat.event("retry", 2)  # retry points at the question; its answer is retried
            chat.event("undo", 0)
            trigger(gc, "/tuneback_clear")
            assert tracker.flush(timeout=10)
        tracker.client.close()

    assert history(sdk, first.run_id) == [
        ("comment", None, "Too short", True),
        ("dismissed", 0.0, None, True),
    ]
    assert history(sdk, second.run_id) == [
        ("copied", 1.0, None, True),
        ("regenerated", 0.0, None, True),
    ]
    conversation = sdk.store.get_conversation(first.conversation_id or "")
    assert conversation.ended_at is not None


def test_an_async_function_with_inputs_and_one_that_fails(sdk: Sdk) -> None:
    async def answer(message: str, history: list[Any], tone: str, temperature: float) -> str:
        if message == "fail":
            raise RuntimeError("the model is down")
        return f"{tone}: {message}"

    async def stream(message: str, history: list[Any]) -> AsyncIterator[str]:
        yield "Hello"
        yield "Hello there"

    with serving(sdk.app) as server:
        demo, tracker = tracked(
            sdk,
            server.url,
            answer,
            additional_inputs=[gr.Textbox(label="tone"), gr.Slider(0, 1, label="temperature")],
        )
        streaming, streaming_tracker = tracked(sdk, server.url, stream, comment=False)
        with launched(demo) as gc:
            chat = Chat(gc, "/chat")
            turn = chat.ask("Hi", "Calm", 0.5)
            with pytest.raises(AppError):
                gc.predict("fail", "Calm", 0.5, api_name="/chat")
            assert tracker.flush(timeout=10)
        with launched(streaming) as gc:
            streamed = Chat(gc, "/chat").ask("Hi")
            assert streaming_tracker.flush(timeout=10)
        assert streaming_tracker.comment_box is None
        tracker.client.close()
        streaming_tracker.client.close()

    run = sdk.store.get_run(turn.run_id)
    assert (run.output, run.params, run.ttft_ms) == (
        "Calm: Hi",
        {"tone": "Calm", "temperature": 0.5},
        None,
    )
    [failed] = [r for r in sdk.store.list_runs("demo") if r.status == "error"]
    assert (failed.output, failed.error) == (None, "RuntimeError: the model is down")
    assert failed.inputs[-1] == ChatMessage(role="user", content="fail")
    # The failed turn is the conversation's third message, with no answer.
    assert failed.conversation_id == turn.conversation_id
    messages = sdk.store.conversation_messages(failed.conversation_id or "")
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Hi"),
        ("assistant", "Calm: Hi"),
        ("user", "fail"),
    ]
    assert sdk.store.get_run(streamed.run_id).output == "Hello there"


def test_tracking_twice_tracks_once(sdk: Sdk) -> None:
    demo = gr.ChatInterface(echo)
    client = sdk.client()
    tracker = track(demo, client).tuneback  # type: ignore[attr-defined]
    assert track(demo, client).tuneback is tracker  # type: ignore[attr-defined]
    assert demo.fn.__wrapped__ is echo  # type: ignore[attr-defined]
    client.close()


def test_an_answer_stopped_mid_way_is_a_cancelled_run_with_the_text_so_far(sdk: Sdk) -> None:
    async def slow(message: str, history: list[Any]) -> AsyncIterator[str]:
        yield "Once"
        await asyncio.sleep(30)
        yield "Once upon"

    with serving(sdk.app) as server:
        demo, tracker = tracked(sdk, server.url, slow)
        with launched(demo) as gc:
            job = gc.submit("Tell me a story", api_name="/chat")
            wait_until(lambda: len(job.outputs()) >= 1)
            assert job.cancel()
            wait_until(lambda: bool(sdk.store.list_runs("demo")), tracker)
        tracker.client.close()
    [run] = sdk.store.list_runs("demo")
    assert (run.status, run.output, run.error) == ("cancelled", "Once", None)


def wait_until(condition: Any, tracker: Tracker | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if tracker is not None:
            tracker.flush(timeout=1)
        time.sleep(0.05)
