"""The chat engine end to end with the scripted model, on both databases."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tuneback.domain import ChatMessage
from tuneback.errors import ModelError, NotFoundError, ValidationError
from tuneback.models import ScriptedModel, Usage
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService, fit_history
from tuneback.storage import Store


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def chat(store: Store, model: ScriptedModel) -> ChatService:
    return ChatService(store, ModelCatalog([model]))


def test_a_reply_streams_and_everything_is_recorded(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue(chunks=["Paris", " is", " the capital."], usage=Usage(21, 5))
    conv = chat.start_conversation(
        project="geo", user="ann", system_prompt="Answer in one sentence."
    )
    question = chat.add_user_message(conv.id, "What is the capital of France?")
    reply = chat.reply(question.id, options={"temperature": 0.3, "max_tokens": 50})
    assert list(reply) == ["Paris", " is", " the capital."]

    assert model.calls[0].messages == [
        ChatMessage(role="system", content="Answer in one sentence."),
        ChatMessage(role="user", content="What is the capital of France?"),
    ]
    assert model.calls[0].options.temperature == 0.3
    run = store.get_run(reply.run_id)
    assert run == reply.run
    assert (run.project, run.user, run.model, run.status) == ("geo", "ann", "scripted", "ok")
    assert run.output == "Paris is the capital."
    assert run.inputs == model.calls[0].messages
    assert run.params == {"temperature": 0.3, "max_tokens": 50}
    assert (run.prompt_tokens, run.completion_tokens) == (21, 5)
    assert run.conversation_id == conv.id
    assert run.message_id == reply.message_id
    assert run.latency_ms is not None
    assert run.ttft_ms is not None
    assert 0 <= run.ttft_ms <= run.latency_ms
    assert [(m.role, m.content, m.parent_id) for m in store.conversation_messages(conv.id)] == [
        ("user", "What is the capital of France?", None),
        ("assistant", "Paris is the capital.", question.id),
    ]
    types = [e.type for e in store.events_after(0)]
    assert types == ["conversation.started", "message.added", "run.completed", "message.added"]


def test_history_carries_over_between_turns(chat: ChatService, model: ScriptedModel) -> None:
    model.enqueue("Hello Ann.")
    model.enqueue("You said your name is Ann.")
    conv = chat.start_conversation(user="ann")
    list(chat.reply(chat.add_user_message(conv.id, "I am Ann.").id))
    second = chat.add_user_message(conv.id, "What is my name?")
    list(chat.reply(second.id))
    assert [m.content for m in model.calls[1].messages] == [
        "I am Ann.",
        "Hello Ann.",
        "What is my name?",
    ]


def test_a_failing_model_gives_a_clear_error_a_failed_run_and_keeps_the_question(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue(
        chunks=["Par"],
        error=ModelError("openai:gpt-x at http://127.0.0.1:9/v1: connection refused"),
        error_after=1,
    )
    conv = chat.start_conversation(user="ann")
    question = chat.add_user_message(conv.id, "Capital of France?")
    reply = chat.reply(question.id)
    received = []
    with pytest.raises(ModelError, match="connection refused"):
        received.extend(reply)
    assert received == ["Par"]
    run = store.get_run(reply.run_id)
    assert (run.status, run.error, run.output) == (
        "error",
        "openai:gpt-x at http://127.0.0.1:9/v1: connection refused",
        "Par",
    )
    contents = [m.content for m in store.conversation_messages(conv.id)]
    assert contents == ["Capital of France?", "Par"]


def test_an_error_before_any_text_stores_no_assistant_message(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue(error=ModelError("scripted: 401 unauthorized"))
    conv = chat.start_conversation()
    question = chat.add_user_message(conv.id, "hi")
    with pytest.raises(ModelError):
        list(chat.reply(question.id))
    assert [m.role for m in store.conversation_messages(conv.id)] == ["user"]
    [event] = store.events_after(0, types=["run.failed"])
    assert event.payload.run.message_id is None  # type: ignore[attr-defined]


def test_cancel_mid_stream_stores_the_partial_answer(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue(chunks=[f"w{i} " for i in range(100)], delay=0.01)
    conv = chat.start_conversation()
    reply = chat.reply(chat.add_user_message(conv.id, "Count.").id)
    received = []
    for chunk in reply:
        received.append(chunk)
        if len(received) == 3:
            assert chat.cancel(reply.run_id) is True
    assert received == ["w0 ", "w1 ", "w2 "]
    assert model.calls[0].closed_early
    run = store.get_run(reply.run_id)
    assert (run.status, run.output) == ("cancelled", "w0 w1 w2 ")
    assert chat.cancel(reply.run_id) is False  # no longer streaming


def test_closing_the_stream_counts_as_cancel(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue(chunks=["a", "b", "c", "d"])
    conv = chat.start_conversation()
    reply = chat.reply(chat.add_user_message(conv.id, "go").id)
    stream = iter(reply)
    assert next(stream) == "a"
    stream.close()  # type: ignore[attr-defined]
    run = store.get_run(reply.run_id)
    assert (run.status, run.output) == ("cancelled", "a")


def test_cancel_from_another_thread(chat: ChatService, store: Store, model: ScriptedModel) -> None:
    model.enqueue(chunks=["x"] * 1000, delay=0.005)
    conv = chat.start_conversation()
    reply = chat.reply(chat.add_user_message(conv.id, "go").id)
    threading.Timer(0.05, reply.cancel).start()
    received = list(reply)
    assert 0 < len(received) < 1000
    assert store.get_run(reply.run_id).status == "cancelled"


def test_an_answer_is_answering_until_it_is_stored(
    chat: ChatService, store: Store, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A page that looks while the answer is being stored must find it somewhere:
    # still answering (with all it said) until its message is committed.
    model.enqueue(chunks=["Still", " here."])
    conv = chat.start_conversation()
    question = chat.add_user_message(conv.id, "Hello?")
    reply = chat.reply(question.id)
    seen_while_storing: list[str | None] = []
    store_events = store.append_many

    def looking_first(*args: Any, **kwargs: Any) -> Any:
        live = chat.answering(question.id)
        seen_while_storing.append(live.partial if live is not None else None)
        return store_events(*args, **kwargs)

    monkeypatch.setattr(store, "append_many", looking_first)
    assert "".join(reply) == "Still here."
    assert seen_while_storing == ["Still here."]
    assert chat.answering(question.id) is None
    assert [m.content for m in store.conversation_messages(conv.id)] == ["Hello?", "Still here."]


def test_regenerate_adds_a_sibling_and_marks_the_first_answer(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue("first answer")
    model.enqueue("second answer")
    conv = chat.start_conversation(user="ann")
    question = chat.add_user_message(conv.id, "Tell me something.")
    first = chat.reply(question.id)
    list(first)
    assert first.message is not None
    second = chat.regenerate(first.message.id)
    list(second)
    assert second.message is not None
    assert second.message.parent_id == first.message.parent_id == question.id
    assert model.calls[0].messages == model.calls[1].messages
    [signal] = store.feedback_for_run(first.run_id)
    assert (signal.key, signal.kind, signal.user, signal.metadata) == (
        "regenerated",
        "implicit",
        "ann",
        {"new_run_id": second.run_id},
    )
    path = chat.current_path(conv.id)
    assert [m.content for m in path] == ["Tell me something.", "second answer"]
    assert [m.content for m in chat.current_path(conv.id, first.message.id)] == [
        "Tell me something.",
        "first answer",
    ]


def test_editing_a_question_starts_a_new_branch(
    chat: ChatService, store: Store, model: ScriptedModel
) -> None:
    model.enqueue("one")
    model.enqueue("two")
    model.enqueue("three")
    conv = chat.start_conversation()
    q1 = chat.add_user_message(conv.id, "first question")
    list(chat.reply(q1.id))
    q2 = chat.add_user_message(conv.id, "second question")
    list(chat.reply(q2.id))
    edited = chat.edit_user_message(q2.id, "second question, reworded")
    assert edited.parent_id == q2.parent_id
    list(chat.reply(edited.id))
    assert [m.content for m in model.calls[2].messages] == [
        "first question",
        "one",
        "second question, reworded",
    ]
    assert len(store.conversation_messages(conv.id)) == 6


def test_history_is_windowed_to_the_context_budget(store: Store) -> None:
    small = ScriptedModel(context_window=60)
    chat = ChatService(store, ModelCatalog([small]))
    conv = chat.start_conversation(system_prompt="Be kind.")
    for n in range(6):
        small.enqueue(f"answer number {n} " + "x" * 40)
        message = chat.add_user_message(conv.id, f"question number {n} " + "y" * 40)
        list(chat.reply(message.id, options={"max_tokens": 10}))
    sent = small.calls[-1].messages
    assert sent[0] == ChatMessage(role="system", content="Be kind.")
    assert sent[-1].content.startswith("question number 5")
    assert len(sent) < 12  # older turns were dropped to fit


def test_fit_history_always_keeps_the_newest_turn() -> None:
    tiny = ScriptedModel(context_window=8)
    turns = [ChatMessage(role="user", content="a very long question " * 20)]
    assert fit_history(tiny, "sys", turns, reply_budget=4) == [
        ChatMessage(role="system", content="sys"),
        *turns,
    ]


def test_mistakes_get_clear_errors(chat: ChatService, model: ScriptedModel) -> None:
    with pytest.raises(NotFoundError, match="model 'gpt-9' is not offered here"):
        chat.start_conversation(model="gpt-9")
    conv = chat.start_conversation()
    with pytest.raises(ValidationError, match="needs some text"):
        chat.add_user_message(conv.id, "   ")
    question = chat.add_user_message(conv.id, "hi")
    with pytest.raises(ValidationError, match="invalid model options"):
        chat.reply(question.id, options={"temprature": 1})
    model.enqueue("ok")
    reply = chat.reply(question.id)
    list(reply)
    assert reply.message is not None
    with pytest.raises(ValidationError, match="replies answer a user message"):
        chat.reply(reply.message.id)
    chat.end_conversation(conv.id)
    with pytest.raises(ValidationError, match="has ended"):
        chat.add_user_message(conv.id, "still there?")
