"""The scripted fake: queued replies, failures, pauses, loading, and what it received."""

from __future__ import annotations

import threading

import pytest

from tests.models.model_messages import ask, drain
from tuneback.errors import ModelError, ModelUnavailableError
from tuneback.models import ModelOptions, ScriptedModel, Usage, complete, resolve_model


def test_replays_queued_replies_in_order_and_records_calls() -> None:
    model = ScriptedModel(["first answer"])
    model.enqueue(chunks=["sec", "ond"], usage=Usage(3, 2))

    assert drain(model.stream(ask("one"), ModelOptions(temperature=0.3))) == (
        ["first ", "answer"],
        [Usage(prompt_tokens=5, completion_tokens=3, estimated=True)],
    )
    assert complete(model, ask("two", system="be brief"), ModelOptions(max_tokens=9)) == (
        "second",
        Usage(3, 2),
    )

    assert [call.messages for call in model.calls] == [ask("one"), ask("two", system="be brief")]
    assert [call.options for call in model.calls] == [
        ModelOptions(temperature=0.3),
        ModelOptions(max_tokens=9),
    ]
    assert [(c.chunks_sent, c.finished, c.closed_early) for c in model.calls] == [
        (2, True, False),
        (2, True, False),
    ]
    assert model.pending == 0


def test_an_empty_queue_is_a_clear_error() -> None:
    model = ScriptedModel()

    with pytest.raises(ModelError) as caught:
        complete(model, ask("hello"))

    assert caught.value.message == (
        "scripted model: no reply queued for call 1 — call enqueue() before the code under "
        "test streams"
    )


def test_error_before_any_chunk() -> None:
    model = ScriptedModel()
    model.enqueue(error=ModelError("backend down"))

    with pytest.raises(ModelError, match=r"^backend down$"):
        complete(model, ask("hello"))


def test_error_after_some_chunks() -> None:
    model = ScriptedModel()
    model.enqueue("one two three", error_after=2)
    stream = model.stream(ask("hi"), ModelOptions())

    assert [next(stream), next(stream)] == ["one ", "two "]
    with pytest.raises(ModelError, match=r"^scripted failure after 2 chunks$"):
        next(stream)

    assert model.calls[0].finished
    assert not model.calls[0].closed_early


def test_a_foreign_exception_reaches_the_caller_as_model_error() -> None:
    model = ScriptedModel()
    model.enqueue(error=RuntimeError("boom"))

    with pytest.raises(ModelError, match=r"^scripted failed: RuntimeError: boom$"):
        complete(model, ask("hello"))


def test_close_mid_stream_is_recorded_as_cancel() -> None:
    model = ScriptedModel()
    model.enqueue("a b c d e f", delay=0.01)
    stream = model.stream(ask("hi"), ModelOptions())

    assert [next(stream), next(stream)] == ["a ", "b "]
    stream.close()

    call = model.calls[0]
    assert (call.chunks_sent, call.finished, call.closed_early) == (2, False, True)


def test_loading_can_be_held_and_released() -> None:
    gate = threading.Event()
    model = ScriptedModel(["ready now"], load_gate=gate)

    assert model.status == "loading"
    model.start_loading()
    assert model.status == "loading"
    with pytest.raises(ModelUnavailableError, match="is still loading"):
        model.wait_until_loaded(timeout=0.01)

    gate.set()
    assert complete(model, ask("hi"))[0] == "ready now"
    assert model.status == "ready"


def test_a_failed_load_makes_streams_unavailable() -> None:
    model = ScriptedModel(["never"], load_error="weights missing — reinstall them")
    model.start_loading()

    with pytest.raises(ModelUnavailableError) as caught:
        complete(model, ask("hi"))

    assert caught.value.message == "weights missing — reinstall them"
    assert caught.value.status_code == 503
    assert (model.status, model.load_error) == ("error", "weights missing — reinstall them")
    assert model.calls == []


def test_each_resolve_gives_a_new_model() -> None:
    first = resolve_model("scripted")
    second = resolve_model("scripted")

    assert isinstance(first, ScriptedModel)
    assert isinstance(second, ScriptedModel)
    assert first is not second
