"""The Gradio tracker on ``gr.Blocks`` chats: real apps launched on loopback, driven with
gradio_client as a browser drives them, logging to a real tuneback server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client as GradioClient
from gradio_client.exceptions import AppError

from tests.client.conftest import Sdk
from tests.client.servers import serving
from tests.integrations.test_gradio import Chat, echo, history, launched, trigger
from tuneback import Client
from tuneback.domain import ChatMessage
from tuneback.errors import ConfigurationError
from tuneback.integrations.gradio import Tracker, Turn, text_of, track


def add_message(chat: list[dict[str, Any]], message: str) -> tuple[Any, Any]:
    return [*chat, {"role": "user", "content": message}], gr.Textbox(value="", interactive=False)


def bot(chat: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Streams into a message it keeps changing in place, as Gradio's own demo does."""
    chat.append({"role": "assistant", "content": ""})
    for word in f"You said: {chat[-2]['content'][0]['text']}".split(" "):
        chat[-1]["content"] += ("" if not chat[-1]["content"] else " ") + word
        yield chat


def liked(data: gr.LikeData) -> None:
    LIKES.append(data.liked)


LIKES: list[object] = []


def canonical(sdk: Sdk, url: str) -> tuple[gr.Blocks, Tracker]:
    """Gradio's "chatbot with like" Blocks app: question, then a streamed answer."""
    with gr.Blocks() as demo:
        chatbot = gr.Chatbot()
        box = gr.Textbox()
        clear = gr.Button("Clear")
        added = box.submit(add_message, [chatbot, box], [chatbot, box], api_name="add")
        added.then(bot, chatbot, chatbot, api_name="bot")
        chatbot.like(liked, None, None, api_name="vote")
        clear.click(lambda: None, None, chatbot, api_name="clear")
    tracker = track(demo, Client(url, sdk.key), model="echo-bot", user="ann").tuneback  # type: ignore[attr-defined]
    assert isinstance(tracker, Tracker)
    return demo, tracker


class BlocksChat:
    """One browser session on a Blocks chat: each question goes through the app's handlers,
    named by their API names."""

    def __init__(
        self, gc: GradioClient, *, add: str = "/add", bot: str = "/bot", vote: str = "/vote"
    ) -> None:
        self.gc = gc
        self.names = (add, bot, vote)
        self.messages: list[dict[str, Any]] = []

    def ask(self, question: str) -> Turn:
        add, bot, _ = self.names
        chat, _ = self.gc.predict(self.messages, question, api_name=add)
        self.messages = self.gc.predict(chat, api_name=bot)
        turn = Turn.decode(self.messages[-1]["metadata"]["id"])
        assert turn is not None
        return turn

    def like(self, index: int, liked: bool) -> None:
        """A click on 👍/👎 runs every like listener: the app's own, and tuneback's."""
        event = {"index": index, "value": self.messages[index]["content"], "liked": liked}
        trigger(self.gc, self.names[2], event_data=event)
        trigger(self.gc, "/tuneback_like", self.messages, event_data=event)


def test_a_blocks_chat_with_like_logs_answers_in_a_conversation_and_ratings(sdk: Sdk) -> None:
    LIKES.clear()
    with serving(sdk.app) as server:
        demo, tracker = canonical(sdk, server.url)
        with launched(demo) as gc:
            chat = BlocksChat(gc)
            first = chat.ask("Hi")
            second = chat.ask("Why?")
            chat.like(1, liked=True)
            chat.like(3, liked=False)
            gc.predict(api_name="/clear")
            assert tracker.flush(timeout=10)
        tracker.client.close()

    assert [text_of(m["content"]) for m in chat.messages] == [
        "Hi",
        "You said: Hi",
        "Why?",
        "You said: Why?",
    ]
    assert first.conversation_id == second.conversation_id
    conversation = sdk.store.get_conversation(first.conversation_id or "")
    assert (conversation.user, conversation.model, conversation.title) == ("ann", "echo-bot", "Hi")
    assert conversation.ended_at is not None  # the Clear button emptied the chat
    messages = sdk.store.conversation_messages(conversation.id)
    assert [(m.role, m.content, m.run_id) for m in messages] == [
        ("user", "Hi", None),
        ("assistant", "You said: Hi", first.run_id),
        ("user", "Why?", None),
        ("assistant", "You said: Why?", second.run_id),
    ]
    assert [m.parent_id for m in messages] == [None] + [m.id for m in messages[:-1]]
    # Only the answers are runs: the handler that added the question showed none.
    runs = sdk.store.list_runs("demo")
    assert sorted(r.id for r in runs) == sorted([first.run_id, second.run_id])
    run = sdk.store.get_run(second.run_id)
    assert run.inputs == [
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="You said: Hi"),
        ChatMessage(role="user", content="Why?"),
    ]
    assert (run.output, run.model, run.user, run.status, run.metadata) == (
        "You said: Why?",
        "echo-bot",
        "ann",
        "ok",
        {"integration": "gradio"},
    )
    assert run.ttft_ms is not None
    assert run.latency_ms is not None
    assert 0 <= run.ttft_ms <= run.latency_ms
    assert history(sdk, first.run_id) == [("thumbs", 1.0, None, True)]
    assert history(sdk, second.run_id) == [("thumbs", 0.0, None, True)]
    assert LIKES == [True, False]  # the app's own like handler ran too


def test_tracking_adds_no_retry_or_undo_button_the_app_does_not_have(sdk: Sdk) -> None:
    demo, tracker = canonical(sdk, "http://tuneback.test")
    names = {d.api_name for d in demo.fns.values()}
    assert {"tuneback_like", "tuneback_copy", "tuneback_clear"} <= names
    assert not {"tuneback_retry", "tuneback_undo"} & names
    assert not getattr(tracker.chatbot, "_retryable", False)
    assert tracker.chatbot.likeable
    tracker.client.close()


def test_one_handler_that_returns_the_answer_with_retry_undo_and_a_failure(sdk: Sdk) -> None:
    def respond(message: str, chat: list[Any], request: gr.Request) -> tuple[str, list[Any]]:
        assert request.session_hash  # Gradio still passes what the handler asks for
        if message == "fail":
            raise RuntimeError("the model is down")
        answer = gr.ChatMessage(role="assistant", content=f"Echo: {message}")
        return "", [*chat, {"role": "user", "content": message}, answer]

    def again(chat: list[Any], data: gr.RetryData) -> list[Any]:
        question = chat[data.index]
        return [*chat[: data.index], question, {"role": "assistant", "content": "Echo again"}]

    def undo(chat: list[Any], data: gr.UndoData) -> list[Any]:
        return chat[: data.index]

    with gr.Blocks() as demo:
        chatbot = gr.Chatbot()
        message = gr.Textbox()
        message.submit(respond, [message, chatbot], [message, chatbot], api_name="respond")
        chatbot.retry(again, chatbot, chatbot, api_name="again")
        chatbot.undo(undo, chatbot, chatbot, api_name="undo")

    with serving(sdk.app) as server:
        tracker = track(demo, Client(server.url, sdk.key), comment=False).tuneback  # type: ignore[attr-defined]
        with launched(demo) as gc:
            _, chat = gc.predict("Hi", [], api_name="/respond")
            first = Turn.decode(chat[-1]["metadata"]["id"])
            assert first is not None
            retried = trigger(gc, "/again", chat, event_data={"index": 0, "value": "Hi"})
            trigger(gc, "/tuneback_retry", chat, event_data={"index": 0, "value": "Hi"})
            again_turn = Turn.decode(retried[-1]["metadata"]["id"])
            assert again_turn is not None
            trigger(gc, "/undo", retried, event_data={"index": 0, "value": "Hi"})
            trigger(gc, "/tuneback_undo", retried, event_data={"index": 0, "value": "Hi"})
            with pytest.raises(AppError):
                gc.predict("fail", chat, api_name="/respond")
            assert tracker.flush(timeout=10)
        tracker.client.close()

    assert again_turn.conversation_id == first.conversation_id
    assert history(sdk, first.run_id) == [("regenerated", 0.0, None, True)]
    assert history(sdk, again_turn.run_id) == [("dismissed", 0.0, None, True)]
    runs = {r.output: r for r in sdk.store.list_runs("demo")}
    assert set(runs) == {"Echo: Hi", "Echo again", None}
    assert runs["Echo again"].inputs == [ChatMessage(role="user", content="Hi")]
    failed = runs[None]
    assert (failed.status, failed.error) == ("error", "RuntimeError: the model is down")
    assert failed.inputs == [
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="Echo: Hi"),
        ChatMessage(role="user", content="fail"),
    ]
    assert failed.conversation_id == first.conversation_id
    messages = sdk.store.conversation_messages(first.conversation_id or "")
    # The retried answer is a second branch under the first question's parent.
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Hi"),
        ("assistant", "Echo: Hi"),
        ("user", "Hi"),
        ("assistant", "Echo again"),
        ("user", "fail"),
    ]


def test_a_clear_button_that_empties_the_chat_in_the_browser_ends_the_conversation(
    sdk: Sdk,
) -> None:
    with gr.Blocks() as demo:
        chatbot = gr.Chatbot()
        box = gr.Textbox()
        added = box.submit(add_message, [chatbot, box], [chatbot, box], api_name="add")
        added.then(bot, chatbot, chatbot, api_name="bot")
        button = gr.ClearButton([box, chatbot])
    with serving(sdk.app) as server:
        tracker = track(demo, Client(server.url, sdk.key)).tuneback  # type: ignore[attr-defined]
        # The button's own clearing runs in the browser alone; tuneback listens beside it.
        [ending] = [
            d.api_name
            for d in demo.fns.values()
            if d.fn == tracker.on_clear and d.targets == [(button._id, "click")]
        ]
        with launched(demo) as gc:
            turn = BlocksChat(gc).ask("Hi")
            trigger(gc, f"/{ending}")
            assert tracker.flush(timeout=10)
        tracker.client.close()
    assert sdk.store.get_conversation(turn.conversation_id or "").ended_at is not None


def test_a_chat_interface_inside_a_blocks_page_is_tracked_as_one(sdk: Sdk) -> None:
    with gr.Blocks() as page:
        gr.Markdown("# Ask anything")
        gr.ChatInterface(echo, api_name="chat")
    with serving(sdk.app) as server:
        tracker = track(page, Client(server.url, sdk.key), model="echo-bot").tuneback  # type: ignore[attr-defined]
        with launched(page) as gc:
            chat = Chat(gc, "/chat")
            turn = chat.ask("Hi")
            chat.event("like", 1, liked=True)
            assert tracker.flush(timeout=10)
        tracker.client.close()
    [run] = sdk.store.list_runs("demo")
    assert (run.id, run.output, run.model) == (turn.run_id, "You said: Hi", "echo-bot")
    assert history(sdk, run.id) == [("thumbs", 1.0, None, True)]


def test_a_blocks_app_track_cannot_read_says_what_it_needs() -> None:
    with gr.Blocks() as no_chat:
        gr.Textbox()
    with gr.Blocks() as no_handler:
        chatbot = gr.Chatbot()
        gr.Button("Hello").click(lambda: [{"role": "assistant", "content": "Hi"}], None, chatbot)
    client = Client("http://tuneback.test")
    with pytest.raises(ConfigurationError) as no_chat_error:
        track(no_chat, client)
    with pytest.raises(ConfigurationError) as no_handler_error:
        track(no_handler, client)
    with pytest.raises(ConfigurationError) as not_gradio:
        track(lambda: None, client)  # type: ignore[type-var]
    client.close()
    how = (
        "track() needs a gr.ChatInterface, or a gr.Blocks with one gr.Chatbot and an event "
        "handler that takes the Chatbot's value (or a Textbox's) and returns the Chatbot with "
        "the answer (pass chatbot= when there are several); for another shape, log from your "
        "own code with tuneback.Client: log_run(...) for each answer and record_feedback(...) "
        "for each rating"
    )
    assert str(no_chat_error.value) == f"this gr.Blocks has no gr.Chatbot: {how}"
    assert str(no_handler_error.value) == (
        "no event handler of this gr.Blocks takes a question and returns its Chatbot's "
        f"messages: {how}"
    )
    assert str(not_gradio.value) == f"track() was given a function: {how}"
    assert not hasattr(no_handler, "tuneback")
