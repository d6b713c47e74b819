"""``tuneback train --base-model local``: the bundled SmolLM2 GGUF is trained and written back.

The bundled file is de-quantised once per test session (about half a minute) into a
session cache that every test here shares through ``XDG_CACHE_HOME``.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.export.seed import seed
from tests.models.model_messages import ask, drain
from tuneback.cli import app
from tuneback.errors import ConfigurationError
from tuneback.models import ModelOptions, resolve_model
from tuneback.storage import Store
from tuneback.training import TrainingOptions, train_model

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
pytest.importorskip("trl")
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: tuneback[local]")

from tuneback.models.local import bundled_model_path  # noqa: E402
from tuneback.training.gguf_files import dequantize_gguf, write_gguf  # noqa: E402

pytestmark = pytest.mark.slow

GREEDY = ModelOptions(temperature=0, max_tokens=12)


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``XDG_CACHE_HOME`` whose tuneback/gguf already holds the de-quantised bundled model.

    One per test run: under pytest-xdist every worker's temporary directory sits in
    the run's own, so the first worker de-quantises and the others wait for it.
    """
    base = tmp_path_factory.getbasetemp()
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    home = run / "gguf-cache-home"
    home.mkdir(exist_ok=True)
    with (run / "gguf-cache-home.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = home / "done"
        if not done.exists():
            dequantize_gguf(bundled_model_path(), home / "tuneback" / "gguf")
            done.touch()
    return home


@pytest.fixture
def cached(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    return cache_home / "tuneback" / "gguf"


def answer(spec: str) -> str:
    model = resolve_model(spec)
    model.start_loading()
    model.wait_until_loaded(timeout=120)
    chunks, [usage] = drain(model.stream(ask("What is the capital of France?"), GREEDY))
    assert 1 <= usage.completion_tokens <= GREEDY.max_tokens  # type: ignore[operator]
    return "".join(chunks)


# The database only hands over the rows to train on (the exports that read them are
# tested on both databases); training the model once is enough.
@pytest.mark.parametrize("dialect", ["sqlite"])
def test_cli_trains_the_bundled_model_and_llama_cpp_answers_like_transformers(
    database_url: str, cached: Path, tmp_path: Path
) -> None:
    with Store(database_url) as store:
        seed(store)
    output = tmp_path / "tuned"
    result = CliRunner().invoke(
        app,
        [
            "train", "dpo", "--base-model", "local", "--output", str(output), "--max-steps", "2",
            "--batch-size", "2", "--max-length", "64", "--gguf-type", "f32", "-d", database_url,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [copy] = cached.iterdir()
    text = result.output.replace(str(output.resolve()), "OUT").replace(str(copy), "CACHE")
    text = re.sub(r"\d+\.\d{4}", "L", text)
    text = re.sub(r"in \d+\.\d s", "in N s", text)
    lines = [line for line in text.splitlines() if not re.match(r" +\d+  ", line)]
    assert lines[:4] == [
        "base      SmolLM2-135M-Instruct.Q4_1.gguf, de-quantised copy in CACHE",
        "step 1/2  loss L",
        "step 2/2  loss L",
        "gguf      writing model.gguf (f32)",
    ]
    assert lines[4:] == [
        "trained dpo on 7 rows for 2 steps (LoRA merged into the weights) in N s",
        "loss      L → L",
        "model     OUT",
        "gguf      OUT/model.gguf",
        "serve it  tuneback serve -m local -m gguf:OUT/model.gguf",
        "          (or transformers:OUT with torch)",
        "skipped 7 rows:",
    ]

    # The two files serve the same model: greedy answers agree token for token.
    by_transformers = answer(f"transformers:{output}")
    by_llama_cpp = answer(f"gguf:{output / 'model.gguf'}")
    assert by_llama_cpp == by_transformers
    assert by_transformers.strip()


def test_the_gguf_written_back_holds_the_base_weights_and_metadata(
    cached: Path, tmp_path: Path
) -> None:
    [copy] = cached.iterdir()
    model = transformers.AutoModelForCausalLM.from_pretrained(copy)
    written = write_gguf(model, bundled_model_path(), tmp_path / "base.gguf", tensor_type="f32")

    base, back = gguf.GGUFReader(str(bundled_model_path())), gguf.GGUFReader(str(written))
    assert fields(back) == {**fields(base), "general.file_type": 0}
    ours = {t.name: t for t in back.tensors}
    assert {name: list(t.shape) for name, t in ours.items()} == {
        t.name: list(t.shape) for t in base.tensors
    }
    # De-quantised and written as F32, every weight is the base file's, q/k rows in its order.
    for theirs in base.tensors:
        mine = ours[theirs.name]
        assert mine.tensor_type == gguf.GGMLQuantizationType.F32
        expected = gguf.quants.dequantize(theirs.data, theirs.tensor_type)
        assert (mine.data == expected).all(), theirs.name


def test_the_default_q8_0_gguf_keeps_each_weight_within_its_rounding_and_serves(
    cached: Path, tmp_path: Path
) -> None:
    [copy] = cached.iterdir()
    model = transformers.AutoModelForCausalLM.from_pretrained(copy)
    written = write_gguf(model, bundled_model_path(), tmp_path / "q8.gguf")

    base, back = gguf.GGUFReader(str(bundled_model_path())), gguf.GGUFReader(str(written))
    assert fields(back)["general.file_type"] == 7  # MOSTLY_Q8_0
    ours = {t.name: t for t in back.tensors}
    for theirs in base.tensors:
        mine = ours[theirs.name]
        expected = gguf.quants.dequantize(theirs.data, theirs.tensor_type)
        if len(theirs.shape) == 1:
            assert mine.tensor_type == gguf.GGMLQuantizationType.F32
            assert (mine.data == expected).all(), theirs.name
            continue
        assert mine.tensor_type == gguf.GGMLQuantizationType.Q8_0
        # Q8_0 keeps 32 weights as int8 times one F16 scale, absmax/127: off by half a step,
        # plus the scale's own rounding (up to 127 steps x 2^-11).
        got = gguf.quants.dequantize(mine.data, mine.tensor_type)
        blocks = expected.reshape(-1, 32)
        step = abs(blocks).max(axis=1, keepdims=True) / 127
        assert (abs(got.reshape(-1, 32) - blocks) <= step * 0.57 + 1e-6).all(), theirs.name
    assert answer(f"gguf:{written}").strip()


def fields(reader: Any) -> dict[str, Any]:
    return {
        key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")
    }


def test_missing_gguf_package_and_missing_files_are_explained(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store)
    options = TrainingOptions(max_steps=1)
    with pytest.raises(ConfigurationError, match=r"gguf:.*nope\.gguf: no such GGUF file"):
        train_model(
            store, method="sft", base_model=f"gguf:{tmp_path / 'nope.gguf'}",
            output=tmp_path / "a", options=options,
        )  # fmt: skip
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(ConfigurationError) as missing:
        train_model(store, method="sft", base_model="local", output=tmp_path / "b")
    assert missing.value.message == (
        "training needs gguf: pip install 'tuneback[train]'  "
        "(trl, datasets, transformers, peft, gguf, torch==2.13.0)"
    )
