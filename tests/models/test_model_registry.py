"""Spec parsing, the built-in table, entry-point plugins and factory options."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.models.model_messages import ask
from tuneback.errors import ConfigurationError
from tuneback.models import (
    BUILTIN_BACKENDS,
    EchoModel,
    available_backends,
    complete,
    parse_spec,
    resolve_model,
)
from tuneback.models.openai_compat import OpenAIModel

BUILTINS = ["echo", "gguf", "hf", "local", "openai", "python", "scripted", "transformers"]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("echo", ("echo", None)),
        ("  openai:gpt-4o-mini ", ("openai", "gpt-4o-mini")),
        ("python:mypkg.mod:fn", ("python", "mypkg.mod:fn")),
        ("name:arg:with:colons", ("name", "arg:with:colons")),
        ("gguf:/models/x.gguf", ("gguf", "/models/x.gguf")),
        ("gguf:C:/models/x.gguf", ("gguf", "C:/models/x.gguf")),
        ("openai:", ("openai", None)),
    ],
)
def test_parse_spec(spec: str, parsed: tuple[str, str | None]) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["", ":model", "9lives", "open ai:x"])
def test_malformed_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="expected name or name:argument"):
        parse_spec(spec)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_model("antropic:claude")

    assert caught.value.message == (
        "unknown model backend 'antropic'; known backends: " + ", ".join(BUILTINS)
    )
    assert caught.value.details == {"backend": "antropic", "known": BUILTINS}
    assert caught.value.status_code == 400


def test_available_backends_has_every_builtin() -> None:
    assert set(BUILTINS) <= set(available_backends())
    assert sorted(BUILTIN_BACKENDS) == BUILTINS


def test_factories_get_the_argument_and_options() -> None:
    model = resolve_model("openai:llama3:8b", base_url="http://127.0.0.1:1/v1", timeout=3)

    assert isinstance(model, OpenAIModel)
    assert (model.spec, model.name, model.model) == ("openai:llama3:8b", "llama3:8b", "llama3:8b")
    assert (model.base_url, model.timeout) == ("http://127.0.0.1:1/v1", 3)


def test_an_option_a_backend_does_not_take_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_model("echo", n_ctx=4096)

    assert caught.value.message == (
        "model 'echo' does not take these options: got an unexpected keyword argument 'n_ctx'"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("echo:loud", "echo takes no argument or 'slow', got 'loud'"),
        ("openai", "openai needs a model name: openai:<model>, e.g. openai:gpt-4o-mini"),
        ("hf", "hf needs a model id or an endpoint URL: hf:<org>/<model> or hf:http://host:port"),
        ("gguf", "gguf needs a file: gguf:<path/to/model.gguf>"),
        ("gguf:/no/such.gguf", "gguf:/no/such.gguf: no such file"),
        (
            "local:other",
            "local takes no argument (got 'other'); use gguf:<path> for another model file",
        ),
        ("transformers", "transformers needs a model directory: transformers:<dir>"),
        (
            "transformers:/no/such/dir",
            "transformers:/no/such/dir: not a model directory (no config.json in /no/such/dir)",
        ),
    ],
)
def test_builtin_factories_check_their_argument(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_model(spec)
    assert caught.value.message == message


def test_echo_variants() -> None:
    slow = resolve_model("echo:slow", delay=0)
    assert isinstance(slow, EchoModel)
    assert (slow.spec, slow.delay) == ("echo:slow", 0)
    assert complete(slow, ask("a b"))[0] == "a b"


PLUGIN = """
from tuneback.models.echo import EchoModel

def create(argument=None, *, shout=False):
    return EchoModel(spec="parrot" if argument is None else f"parrot:{argument}", name="Parrot")

def hijack(argument=None):
    raise AssertionError("a plugin must not replace a built-in")
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real distribution with entry points, found on sys.path like any installed one."""
    (tmp_path / "parrot_plugin.py").write_text(PLUGIN)
    dist_info = tmp_path / "parrot_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: parrot-plugin\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [tuneback.models]
            parrot = parrot_plugin:create
            echo = parrot_plugin:hijack
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.usefixtures("installed_plugin")
def test_entry_point_backends_work_like_builtins(caplog: pytest.LogCaptureFixture) -> None:
    assert "parrot" in available_backends()

    model = resolve_model("parrot:polly")
    assert (model.spec, model.name) == ("parrot:polly", "Parrot")
    assert complete(model, ask("pretty bird"))[0] == "pretty bird"

    with caplog.at_level(logging.WARNING, logger="tuneback.models.registry"):
        assert isinstance(resolve_model("echo"), EchoModel)
    assert "ignoring model backend 'echo' from entry point parrot_plugin:hijack" in caplog.text


def test_importing_the_package_loads_no_backend_library() -> None:
    heavy = ["torch", "transformers", "llama_cpp", "openai", "huggingface_hub"]
    code = (
        "import sys, tuneback.models as m; m.resolve_model('echo'); "
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
