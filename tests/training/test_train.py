"""``tuneback train`` on a tiny random Llama: TRL accepts each exported format, and the model it
saves loads with ``AutoModelForCausalLM`` and generates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.export.seed import seed
from tests.training.tiny_model import build_tiny_model
from tuneback.cli import app
from tuneback.errors import ConflictError, ValidationError
from tuneback.export import ExportFilters
from tuneback.storage import Store
from tuneback.training import TrainingOptions, train_model

transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow

FEW_STEPS = TrainingOptions(max_steps=2, batch_size=2, max_length=64)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.mark.parametrize(("method", "rows"), [("sft", 5), ("dpo", 7), ("kto", 8)])
def test_each_method_trains_and_saves_a_servable_model(
    store: Store, base_model: Path, tmp_path: Path, method: str, rows: int
) -> None:
    seed(store)
    steps: list[tuple[int, int]] = []
    summary = train_model(
        store,
        method=method,  # type: ignore[arg-type]
        base_model=base_model,
        output=tmp_path / "tuned",
        options=FEW_STEPS,
        on_step=lambda step, total, loss: steps.append((step, total)),
    )
    assert (summary.rows, summary.steps, summary.lora) == (rows, 2, True)
    assert steps == [(1, 2), (2, 2)]
    assert None not in (summary.first_loss, summary.last_loss)

    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "tuned")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "tuned")
    assert not any("lora" in name for name, _ in model.named_parameters())
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi"}], add_generation_prompt=True, return_tensors="pt"
    )
    ids = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    generated = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert generated.shape[-1] > ids.shape[-1]
    provenance = json.loads((tmp_path / "tuned" / "tuneback-training.json").read_text())
    assert provenance["summary"]["method"] == method


def test_nothing_to_train_on_and_occupied_outputs_are_refused(
    store: Store, base_model: Path, tmp_path: Path
) -> None:
    seed(store)
    with pytest.raises(ValidationError, match=r"no dpo rows to train on \(skipped: 1 no other"):
        train_model(
            store,
            method="dpo",
            base_model=base_model,
            output=tmp_path / "a",
            filters=ExportFilters(project="other"),
            options=FEW_STEPS,
        )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ConflictError, match="is not empty: pass --force"):
        train_model(store, method="sft", base_model=base_model, output=tmp_path / "mine")
    with pytest.raises(ConflictError, match="files tuneback did not write"):
        train_model(
            store, method="sft", base_model=base_model, output=tmp_path / "mine", force=True
        )


def test_cli_train_prints_steps_and_summary(
    database_url: str, base_model: Path, tmp_path: Path
) -> None:
    with Store(database_url) as store:
        seed(store)
    output = tmp_path / "tuned"
    result = CliRunner().invoke(
        app,
        [
            "train", "sft", "--base-model", str(base_model), "--output", str(output),
            "--max-steps", "2", "--batch-size", "2", "--max-length", "64", "-d", database_url,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = re.sub(r"\d+\.\d{4}", "L", result.output.replace(str(output.resolve()), "OUT"))
    text = re.sub(r"in \d+\.\d s", "in N s", text)
    lines = [line for line in text.splitlines() if not line.startswith(("step ", " "))]
    assert lines[-5:] == [
        "trained sft on 5 rows for 2 steps (LoRA merged into the weights) in N s",
        "loss      L → L",
        "model     OUT",
        "serve it  tuneback serve --model transformers:OUT",
        "skipped 12 rows:",
    ]
    assert [line for line in text.splitlines() if line.startswith("step ")] == [
        "step 1/2  loss L",
        "step 2/2  loss L",
    ]
