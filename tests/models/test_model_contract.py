"""The streaming contract, checked the same way on every in-process backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pydantic
import pytest

from tests.models.model_messages import ask, drain
from tuneback.errors import ValidationError
from tuneback.models import (
    ModelAdapter,
    ModelOptions,
    Usage,
    adapter_from_callable,
    complete,
    parse_options,
    resolve_model,
)
from tuneback.models.echo import EchoModel
from tuneback.models.scripted import ScriptedModel

PROMPT = "the quick brown fox jumps over the lazy dog"
WORDS = ["the ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog"]


def _echo(delay: float) -> ModelAdapter:
    return EchoModel(delay=delay)


def _scripted(delay: float) -> ModelAdapter:
    model = ScriptedModel()
    model.enqueue(PROMPT, delay=delay)
    return model


def _python(delay: float) -> ModelAdapter:
    def parrot(messages: list[dict[str, str]]) -> Iterator[str]:
        for word in WORDS:
            time.sleep(delay)
            yield word

    return adapter_from_callable(parrot)


BACKENDS: dict[str, Callable[[float], ModelAdapter]] = {
    "echo": _echo,
    "scripted": _scripted,
    "python": _python,
}


@pytest.fixture(params=sorted(BACKENDS))
def make_model(request: pytest.FixtureRequest) -> Callable[[float], ModelAdapter]:
    return BACKENDS[request.param]


def test_streams_nonempty_chunks_then_one_usage(
    make_model: Callable[[float], ModelAdapter],
) -> None:
    chunks, usages = drain(make_model(0.0).stream(ask(PROMPT), ModelOptions()))

    assert chunks == WORDS
    assert usages == [Usage(prompt_tokens=15, completion_tokens=11, estimated=True)]


def test_complete_returns_the_whole_reply(make_model: Callable[[float], ModelAdapter]) -> None:
    text, usage = complete(make_model(0.0), ask(PROMPT))

    assert text == PROMPT
    assert usage.total_tokens == 26


def test_is_ready_without_loading(make_model: Callable[[float], ModelAdapter]) -> None:
    model = make_model(0.0)

    assert (model.status, model.load_error) == ("ready", None)
    model.start_loading()
    assert model.status == "ready"
    assert model.count_tokens("twelve chars") == 3
    assert model.context_window > 0
    assert model.name


def test_close_mid_stream_stops_generating(make_model: Callable[[float], ModelAdapter]) -> None:
    stream = make_model(0.05).stream(ask(PROMPT), ModelOptions())
    assert next(stream) == "the "

    started = time.monotonic()
    stream.close()

    assert time.monotonic() - started < 0.05
    with pytest.raises(StopIteration):
        next(stream)


def test_options_refuse_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="max_token"):
        ModelOptions(max_token=5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError) as caught:
        parse_options({"temperature": 0.5, "max_token": 5})
    assert caught.value.message == (
        "invalid model options: max_token: Extra inputs are not permitted"
    )
    assert caught.value.details == [
        {"loc": ["max_token"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]


@pytest.mark.parametrize(
    "fields",
    [{"temperature": 2.5}, {"temperature": -0.1}, {"max_tokens": 0}, {"top_p": 0}, {"top_p": 1.5}],
)
def test_options_refuse_out_of_range_values(fields: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        parse_options(fields)


def test_options_pass_only_what_was_set() -> None:
    options = parse_options({"temperature": 0, "stop": ["\n"], "seed": 7})

    assert options.as_kwargs() == {"temperature": 0, "stop": ["\n"], "seed": 7}
    assert parse_options(None) == ModelOptions()
    assert parse_options(options) is options


def test_every_backend_is_resolvable_by_spec() -> None:
    for spec in ("echo", "scripted"):
        model = resolve_model(spec)
        assert model.spec == spec
