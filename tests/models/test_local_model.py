"""``local`` and ``gguf:``: the bundled SmolLM2 GGUF run by llama.cpp."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.models.model_messages import ask, drain
from tuneback.errors import ModelError, ModelUnavailableError
from tuneback.models import ModelOptions, complete, estimate_tokens, resolve_model
from tuneback.models.local import LlamaCppModel, bundled_model_path

pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install 'tuneback[local]')"
)


@pytest.fixture(scope="module")
def local_model() -> LlamaCppModel:
    model = resolve_model("local")
    assert isinstance(model, LlamaCppModel)
    model.start_loading()
    model.wait_until_loaded(timeout=120)
    return model


@pytest.mark.slow
def test_answers_a_question_with_real_token_counts(local_model: LlamaCppModel) -> None:
    messages = ask("What is the capital of France?")

    chunks, [usage] = drain(
        local_model.stream(messages, ModelOptions(temperature=0, max_tokens=24))
    )

    assert "".join(chunks).strip()
    assert not usage.estimated
    assert usage.prompt_tokens == local_model.prompt_tokens(messages)
    # The template adds SmolLM's default system prompt around the question.
    assert usage.prompt_tokens > local_model.count_tokens("What is the capital of France?") + 10
    assert 1 <= usage.completion_tokens <= 24 + 2


def test_loads_in_the_background_and_reports_its_window(local_model: LlamaCppModel) -> None:
    fresh = resolve_model("local", n_ctx=512)
    assert fresh.status == "loading"
    fresh.start_loading()
    fresh.wait_until_loaded(timeout=120)

    assert (fresh.status, fresh.load_error, fresh.context_window) == ("ready", None, 512)
    assert (local_model.name, local_model.context_window) == ("SmolLM2-135M-Instruct (local)", 2048)


def test_counts_tokens_with_the_real_tokenizer(local_model: LlamaCppModel) -> None:
    text = "Paris is the capital of France."

    assert local_model.count_tokens(text) == 7
    assert local_model.count_tokens(text) != estimate_tokens(text)


def test_close_mid_stream_stops_generation(local_model: LlamaCppModel) -> None:
    stream = local_model.stream(
        ask("Write a long story about a dragon."), ModelOptions(max_tokens=400)
    )
    first = [next(stream), next(stream)]
    assert all(first)

    started = time.monotonic()
    stream.close()
    closed_after = time.monotonic() - started

    assert closed_after < 0.5
    # The context is free again at once: a new answer does not wait for 398 tokens.
    _, usage = complete(local_model, ask("Say hi."), ModelOptions(max_tokens=3, temperature=0))
    assert usage.completion_tokens <= 3 + 1


def test_gguf_serves_any_model_file(local_model: LlamaCppModel) -> None:
    path = bundled_model_path()
    model = resolve_model(f"gguf:{path}", n_ctx=256)

    assert (model.spec, model.name) == (f"gguf:{path}", "SmolLM2-135M-Instruct.Q4_1")
    text, usage = complete(model, ask("Hello"), ModelOptions(max_tokens=4, temperature=0))
    assert text
    assert (model.context_window, usage.estimated) == (256, False)


def test_a_conversation_longer_than_the_window_is_refused() -> None:
    model = resolve_model("local", n_ctx=128)
    assert isinstance(model, LlamaCppModel)
    messages = ask("word " * 300)

    with pytest.raises(ModelError) as caught:
        complete(model, messages)

    # llama.cpp rounds tiny windows up (to 256 today), so the message uses what it chose.
    assert caught.value.message == (
        "local: the conversation is too long for the model's context window "
        f"({model.prompt_tokens(messages)} tokens, window {model.context_window}) — start a "
        "new chat, or load the model with a larger n_ctx"
    )
    assert caught.value.details == {"backend": "local", "reason": "context_length_exceeded"}


def test_a_file_that_is_not_gguf_fails_to_load(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a model")
    model = resolve_model(f"gguf:{bogus}")
    model.start_loading()

    with pytest.raises(ModelUnavailableError) as caught:
        complete(model, ask("hi"))

    assert model.status == "error"
    assert caught.value.message.startswith(f"gguf:{bogus}: llama.cpp could not load {bogus}: ")
    assert caught.value.message.endswith(" — is it a GGUF model file?")


def test_a_second_stream_waits_its_turn_then_gives_up() -> None:
    model = resolve_model("local", busy_timeout=0.2)
    first = model.stream(ask("Tell me a story."), ModelOptions(max_tokens=50))
    assert next(first)

    with pytest.raises(ModelUnavailableError) as caught:
        complete(model, ask("Hello"))
    assert caught.value.message == (
        "local is still busy with another answer after 0.2s — try again when it is done"
    )

    first.close()
    assert complete(model, ask("Hello"), ModelOptions(max_tokens=2))[0]
