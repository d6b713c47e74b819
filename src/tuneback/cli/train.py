"""``tuneback train``: fine-tune a local model on the feedback, with TRL, on the CPU."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tuneback.cli.app import DatabaseOption, app, err, open_store, out
from tuneback.domain.common import validate
from tuneback.export import DEFAULT_MIN_GAP, DEFAULT_THRESHOLD, ExportFilters, ExportRules
from tuneback.training import METHODS, TrainingOptions, train_model
from tuneback.training.options import DEFAULT_GGUF_TYPE, GGUF_TYPES

TrainMethod = Enum("TrainMethod", {name: name for name in METHODS}, type=str)  # type: ignore[misc]
GgufChoice = Enum("GgufChoice", {name: name for name in GGUF_TYPES}, type=str)  # type: ignore[misc]
DEFAULT_GGUF_CHOICE = GgufChoice(DEFAULT_GGUF_TYPE)

TRAIN_HELP = """\
Fine-tune a model on the feedback: sft, dpo or kto, with TRL, on the CPU.

The training data is what `tuneback export METHOD` would write, with the same
filters and rules (see `tuneback export --help`). Defaults fit a CPU: LoRA
adapters, batch size 1, 20 steps; the adapters are merged into the weights, so
--output is a plain Hugging Face model directory. Nothing is downloaded.

--base-model is one of:

\b
  local           the bundled SmolLM2-135M-Instruct, the model `tuneback serve` chats with
  gguf:PATH       a llama GGUF file
  DIR             a local Hugging Face model directory with a chat template

A GGUF base is de-quantised once (about half a minute; kept in
~/.cache/tuneback/gguf) and the tuned model is also written back to
OUTPUT/model.gguf (--gguf-type, q8_0 by default), with the base file's
tokenizer and chat template, so llama.cpp serves it beside the base:

\b
  tuneback train dpo --base-model local --output ./tuned --max-steps 30 --batch-size 4 \\
      --learning-rate 5e-4 --lora-r 16 --max-length 160
  tuneback serve -m local -m gguf:./tuned/model.gguf

A directory base is served with `tuneback serve --model transformers:OUTPUT`.
Needs the [train] extra: pip install 'tuneback[train]'.
"""


@app.command(help=TRAIN_HELP)
def train(
    method: Annotated[TrainMethod, typer.Argument(metavar="METHOD", help="sft, dpo or kto.")],
    base_model: Annotated[
        str,
        typer.Option(
            "--base-model", "-b", help="local, gguf:PATH or a model directory to start from."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to save the trained model in.")
    ],
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only runs created at or after.")] = None,
    until: Annotated[datetime | None, typer.Option(help="Only runs created before.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only runs of this model (repeat).")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Score runs by this feedback key only.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset (name or id).")] = None,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Score that makes an answer good.")
    ] = DEFAULT_THRESHOLD,
    min_gap: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="DPO: score gap between two answers.")
    ] = DEFAULT_MIN_GAP,
    max_steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 20,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per step.")] = 1,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Learning rate.")] = 1e-4,
    lora: Annotated[
        bool, typer.Option(help="Train LoRA adapters and merge them (--no-lora: all weights).")
    ] = True,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    max_length: Annotated[int, typer.Option(min=8, help="Tokens kept per example.")] = 512,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    gguf_type: Annotated[
        GgufChoice,
        typer.Option(
            help="GGUF base: tensor type of OUTPUT/model.gguf. q8_0 is about as fast as the "
            "bundled Q4_1 file; f32 gives llama.cpp the same greedy tokens as transformers."
        ),
    ] = DEFAULT_GGUF_CHOICE,
    force: Annotated[bool, typer.Option(help="Replace a model tuneback trained before.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    filters = validate(
        ExportFilters,
        {
            "project": project,
            "since": since,
            "until": until,
            "models": tuple(model or ()),
            "key": key,
            "dataset": dataset,
        },
        what="filters",
    )
    options = TrainingOptions(
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        lora=lora,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        max_length=max_length,
        seed=seed,
        gguf_type=gguf_type.value,
    )

    def report(step: int, steps: int, loss: float) -> None:
        err.print(f"step {step}/{steps}  loss {loss:.4f}", markup=False)

    with open_store(database_url) as store:
        summary = train_model(
            store,
            method=method.value,
            base_model=base_model,
            output=output,
            filters=filters,
            rules=ExportRules(threshold=threshold, min_gap=min_gap),
            options=options,
            force=force,
            on_step=report,
            on_status=lambda line: err.print(line, markup=False),
        )
    for line in summary.lines():
        out.print(line, markup=False)
