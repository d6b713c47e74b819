"""``python:<module>:<callable>`` against user modules written into tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models.model_messages import ask, drain
from tuneback.errors import ConfigurationError, ModelError
from tuneback.models import (
    ModelOptions,
    PythonCallableModel,
    Usage,
    adapter_from_callable,
    complete,
    resolve_model,
)
from tuneback.models.echo import EchoModel

USER_MODULE = """
def whole(messages):
    return "You said: " + messages[-1]["content"]

def chunks(messages, temperature=None):
    yield "t="
    yield str(temperature)

def everything(messages, **options):
    return repr(sorted(options.items()))

def counted(messages):
    yield "exact"
    yield USAGE

def broken(messages):
    raise ValueError("no reply today")

def wrong_type(messages):
    return 42

class Bot:
    @staticmethod
    def reply(messages):
        return "bot"
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = "from tuneback.models import Usage\nUSAGE = Usage(7, 1)\n" + USER_MODULE
    path = tmp_path / "mybot_replies.py"
    path.write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return path


def test_function_returning_a_string(user_module: Path) -> None:
    model = resolve_model("python:mybot_replies:whole")

    assert model.spec == "python:mybot_replies:whole"
    assert model.name == "whole"
    assert complete(model, ask("hi")) == ("You said: hi", Usage(5, 3, estimated=True))


def test_generator_gets_the_options_it_names(user_module: Path) -> None:
    model = resolve_model("python:mybot_replies:chunks")

    chunks, _ = drain(model.stream(ask("hi"), ModelOptions(temperature=0.5, max_tokens=3)))

    assert chunks == ["t=", "0.5"]


def test_kwargs_get_every_option_that_was_set(user_module: Path) -> None:
    model = resolve_model("python:mybot_replies:everything")

    text, _ = complete(model, ask("hi"), ModelOptions(seed=1, stop=["x"]))

    assert text == "[('seed', 1), ('stop', ['x'])]"


def test_a_yielded_usage_replaces_the_estimate(user_module: Path) -> None:
    assert complete(resolve_model("python:mybot_replies:counted"), ask("hi")) == (
        "exact",
        Usage(7, 1),
    )


def test_dotted_callable_and_file_path(user_module: Path) -> None:
    assert complete(resolve_model("python:mybot_replies:Bot.reply"), ask("hi"))[0] == "bot"
    by_path = resolve_model(f"python:{user_module}:whole")
    assert by_path.spec == f"python:{user_module}:whole"
    assert complete(by_path, ask("x"))[0] == "You said: x"


def test_errors_in_user_code_name_the_function(user_module: Path) -> None:
    with pytest.raises(ModelError) as caught:
        complete(resolve_model("python:mybot_replies:broken"), ask("hi"))
    assert caught.value.message == "python:mybot_replies:broken raised ValueError: no reply today"

    with pytest.raises(ModelError) as caught:
        complete(resolve_model("python:mybot_replies:wrong_type"), ask("hi"))
    assert caught.value.message == (
        "python:mybot_replies:wrong_type returned int; it must return a str or yield str chunks"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("python", "python needs a target: python:<module>:<callable>"),
        (
            "python:nomodule",
            "python:nomodule: expected python:<module>:<callable>, e.g. python:mybot.chat:reply",
        ),
        (
            "python:mybot_replies:missing",
            "python:mybot_replies:missing: 'mybot_replies' has no attribute 'missing'",
        ),
        ("python:mybot_replies:USAGE", "python:mybot_replies:USAGE: 'USAGE' is not callable"),
        ("python:/no/such/file.py:fn", "python:/no/such/file.py:fn: no such file"),
    ],
)
def test_bad_targets_are_configuration_errors(user_module: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_model(spec)
    assert caught.value.message == message


def test_an_unimportable_module_says_why() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"cannot import 'no_such_mod_xyz': "
        r"ModuleNotFoundError: .* — is it on PYTHONPATH",
    ):
        resolve_model("python:no_such_mod_xyz:fn")


def test_adapter_from_callable() -> None:
    closed: list[bool] = []

    def counting(messages: list[dict[str, str]]) -> Iterator[str]:
        try:
            for number in range(100):
                yield f"{number} "
        finally:
            closed.append(True)

    model = adapter_from_callable(counting, name="Counter")
    assert isinstance(model, PythonCallableModel)
    assert model.name == "Counter"
    assert model.spec == f"python:{__name__}:{counting.__qualname__}"

    stream = model.stream(ask("go"), ModelOptions())
    assert next(stream) == "0 "
    stream.close()
    assert closed == [True]


def test_adapter_from_callable_passes_adapters_through_and_refuses_the_rest() -> None:
    echo = EchoModel()
    assert adapter_from_callable(echo) is echo
    with pytest.raises(ConfigurationError, match="must be a callable or a ModelAdapter, got str"):
        adapter_from_callable("not a function")  # type: ignore[arg-type]
