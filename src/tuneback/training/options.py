"""What ``tuneback train`` can be told, and what it reports when it is done.

The defaults are sized for a CPU: LoRA adapters (merged back into the model
when training ends), batch size 1, a few dozen steps. On a laptop that proves
the pipeline works end to end; a useful model needs more data, steps and a GPU.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneback.domain.common import DomainModel

Method = Literal["sft", "dpo", "kto"]
METHODS: tuple[Method, ...] = ("sft", "dpo", "kto")

GgufType = Literal["f32", "f16", "q8_0", "q4_1"]
GGUF_TYPES: tuple[GgufType, ...] = ("f32", "f16", "q8_0", "q4_1")
DEFAULT_GGUF_TYPE: GgufType = "q8_0"
"""Close to the trained weights, and about as fast in llama.cpp as the bundled Q4_1 file."""


class TrainingOptions(DomainModel):
    max_steps: int = Field(default=20, ge=1, description="Optimizer steps to run.")
    batch_size: int = Field(default=1, ge=1, description="Rows per step per device.")
    gradient_accumulation: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0.0)
    lora: bool = Field(default=True, description="Train LoRA adapters (merged at the end).")
    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    max_length: int = Field(default=512, ge=8, description="Tokens kept per example.")
    beta: float = Field(default=0.1, gt=0.0, description="DPO/KTO: strength of the reference.")
    seed: int = 0
    gguf_type: GgufType = Field(
        default=DEFAULT_GGUF_TYPE,
        description="GGUF base only: tensor type of the GGUF written back (f32, f16, q8_0, q4_1).",
    )


class TrainingSummary(DomainModel):
    method: Method
    base_model: str
    output: str
    rows: int
    rows_skipped: int
    skipped: dict[str, int]
    steps: int
    first_loss: float | None
    last_loss: float | None
    lora: bool
    seconds: float
    gguf: str | None = None
    """The GGUF file written back when the base was one (``local``, ``gguf:PATH``)."""

    def lines(self) -> list[str]:
        def loss(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        adapters = "LoRA merged into the weights" if self.lora else "all weights"
        lines = [
            f"trained {self.method} on {self.rows} rows for {self.steps} steps "
            f"({adapters}) in {self.seconds:.1f} s",
            f"loss      {loss(self.first_loss)} → {loss(self.last_loss)}",
            f"model     {self.output}",
        ]
        if self.gguf:
            lines += [
                f"gguf      {self.gguf}",
                f"serve it  tuneback serve -m {self.base_model} -m gguf:{self.gguf}",
                f"          (or transformers:{self.output} with torch)",
            ]
        else:
            lines.append(f"serve it  tuneback serve --model transformers:{self.output}")
        if self.skipped:
            lines.append(f"skipped {self.rows_skipped} rows:")
            lines += [f"  {count:>9}  {reason}" for reason, count in self.skipped.items()]
        return lines
