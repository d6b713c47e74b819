"""The recorder of a model call: one rule for timing, usage, status and empty output."""

from __future__ import annotations

import threading

import pytest

from tuneback.domain import ChatMessage, Run
from tuneback.errors import ModelError
from tuneback.models import ModelOptions, ScriptedModel, Usage
from tuneback.services.calls import ModelCall, milliseconds

QUESTION = [ChatMessage(role="user", content="Name a colour.")]


def _timing_free(run: Run) -> dict[str, object]:
    """The run without its id, clock times and durations, which no two runs share."""
    return run.model_dump(exclude={"id", "started_at", "created_at", "latency_ms", "ttft_ms"})


def _checked_timing(run: Run) -> None:
    assert run.latency_ms is not None
    assert run.latency_ms == round(run.latency_ms, 3)
    if run.ttft_ms is not None:
        assert run.ttft_ms == round(run.ttft_ms, 3)
        assert 0 <= run.ttft_ms <= run.latency_ms


def test_a_streamed_call_is_fed_chunk_by_chunk_and_becomes_one_run() -> None:
    model = ScriptedModel()
    model.enqueue(chunks=["Deep", " blue"], usage=Usage(7, 2))
    call = ModelCall(model, QUESTION, ModelOptions(temperature=0.5), run_id="r1")
    assert call.next_chunk() == "Deep"
    assert call.text == "Deep"
    assert call.status == "cancelled"  # not at its end yet
    assert call.next_chunk() == " blue"
    assert call.next_chunk() is None
    assert call.next_chunk() is None  # the end stays the end

    run = call.finish(project="p", user="ann", metadata={"side": 1})
    assert run is not None
    _checked_timing(run)
    assert run.ttft_ms is not None
    assert _timing_free(run) == _timing_free(
        Run(
            id="r1",
            project="p",
            user="ann",
            model="scripted",
            params={"temperature": 0.5},
            inputs=QUESTION,
            output="Deep blue",
            status="ok",
            prompt_tokens=7,
            completion_tokens=2,
            metadata={"side": 1},
        )
    )
    assert call.finish(project="p") is None  # recorded once, whoever asks again


def test_a_call_drained_at_once_marks_estimated_usage() -> None:
    model = ScriptedModel(["Red."])
    call = ModelCall(model, QUESTION)
    assert list(call) == ["Red."]
    run = call.finish(project="p")
    assert run is not None
    assert (run.output, run.status, run.error, run.params) == ("Red.", "ok", None, {})
    assert run.metadata == {"usage_estimated": True}
    assert (run.prompt_tokens, run.completion_tokens) == (8, 1)


def test_a_failure_mid_stream_keeps_what_was_said_and_the_error() -> None:
    model = ScriptedModel()
    model.enqueue(chunks=["half", " an"], error=ModelError("backend fell over"), error_after=1)
    call = ModelCall(model, QUESTION)
    received = []
    with pytest.raises(ModelError, match="backend fell over"):
        received.extend(call)
    assert received == ["half"]
    run = call.finish(project="p")
    assert run is not None
    _checked_timing(run)
    assert (run.output, run.status, run.error) == ("half", "error", "backend fell over")
    assert (run.prompt_tokens, run.completion_tokens) == (None, None)
    assert run.ttft_ms is not None


def test_a_model_that_says_nothing_leaves_no_output() -> None:
    failing = ScriptedModel()
    failing.enqueue(error=ModelError("401 unauthorized"))
    call = ModelCall(failing, QUESTION)
    with pytest.raises(ModelError):
        call.next_chunk()
    run = call.finish(project="p")
    assert run is not None
    assert (run.output, run.status, run.error, run.ttft_ms) == (
        None,
        "error",
        "401 unauthorized",
        None,
    )
    silent = ScriptedModel()
    silent.enqueue(chunks=[], usage=Usage(3, 0))
    quiet = ModelCall(silent, QUESTION)
    assert list(quiet) == []
    run = quiet.finish(project="p")
    assert run is not None
    assert (run.output, run.status, run.ttft_ms, run.completion_tokens) == (None, "ok", None, 0)


def test_an_adapter_bug_is_a_model_error_and_a_failed_run() -> None:
    model = ScriptedModel()
    model.enqueue(chunks=["x"], error=KeyError("oops"), error_after=1)
    call = ModelCall(model, QUESTION)
    assert call.next_chunk() == "x"
    with pytest.raises(ModelError):
        call.next_chunk()
    run = call.finish(project="p")
    assert run is not None
    assert (run.status, run.output) == ("error", "x")
    assert run.error is not None


def test_cancel_from_another_thread_stops_at_the_next_chunk_and_closes_the_model() -> None:
    model = ScriptedModel()
    model.enqueue(chunks=[f"w{n} " for n in range(50)], delay=0.01)
    call = ModelCall(model, QUESTION)
    said: list[str] = []

    def listen() -> None:
        for chunk in call:
            said.append(chunk)
            if len(said) == 3:
                threading.Thread(target=call.cancel).start()

    reader = threading.Thread(target=listen)
    reader.start()
    reader.join(10)
    assert 3 <= len(said) < 50
    assert model.calls[0].closed_early
    run = call.finish(project="p")
    assert run is not None
    assert (run.status, run.output) == ("cancelled", "".join(said))


def test_close_before_the_end_is_a_cancelled_run() -> None:
    model = ScriptedModel(["one two three"])
    call = ModelCall(model, QUESTION)
    assert call.next_chunk() == "one "
    call.close()
    assert call.next_chunk() is None
    run = call.finish(project="p")
    assert run is not None
    assert (run.status, run.output) == ("cancelled", "one ")
    assert model.calls[0].closed_early


def test_milliseconds_round_to_the_microsecond() -> None:
    assert milliseconds(0.0123456789) == 12.346
    assert milliseconds(2) == 2000.0
