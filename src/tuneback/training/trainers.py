"""The TRL side of training: load the base model, build the trainer, merge and save.

Everything here imports torch, transformers, peft and trl lazily (they are the
``[train]`` extra) and reads only local files: the base model must be a
directory (``training/base.py`` turns a GGUF base into one), so nothing is ever
fetched from a hub.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuneback.errors import ConfigurationError, ValidationError
from tuneback.training.options import Method, TrainingOptions

INSTALL_HINT = (
    "pip install 'tuneback[train]'  (trl, datasets, transformers, peft, gguf, torch==2.13.0)"
)

TRAINERS: dict[Method, tuple[str, str]] = {
    "sft": ("SFTTrainer", "SFTConfig"),
    "dpo": ("DPOTrainer", "DPOConfig"),
    "kto": ("KTOTrainer", "KTOConfig"),
}


def library(name: str) -> Any:
    # import_module: these libraries are optional and large; they load only
    # when training starts, and stay out of the type checker's way.
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigurationError(f"training needs {exc.name or name}: {INSTALL_HINT}") from None


def load_base(directory: Path) -> tuple[Any, Any]:
    """The model and tokenizer in ``directory``, from local files only."""
    if not directory.is_dir():
        raise ConfigurationError(
            f"--base-model {directory} is not a directory: give a local Hugging Face "
            "model directory (tuneback never downloads one)"
        )
    transformers = library("transformers")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot load the model in {directory}: {exc}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigurationError(
            f"the tokenizer in {directory} has no chat template; the exported data is chat "
            "messages, so use an instruct/chat model"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def build_trainer(
    method: Method,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    options: TrainingOptions,
    work_dir: Path,
    callbacks: list[Any],
) -> Any:
    trl = library("trl")
    peft = library("peft")
    trainer_name, config_name = TRAINERS[method]
    settings: dict[str, Any] = {
        "output_dir": str(work_dir),
        "max_steps": options.max_steps,
        "per_device_train_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.gradient_accumulation,
        "learning_rate": options.learning_rate,
        "max_length": options.max_length,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": options.seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    if method in ("dpo", "kto"):
        settings["beta"] = options.beta
    if method == "kto":
        settings.update(_kto_weights(dataset))
    args = getattr(trl, config_name)(**settings)
    peft_config = None
    if options.lora:
        peft_config = peft.LoraConfig(
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    trainer = getattr(trl, trainer_name)(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    # The caller reports progress; transformers' own printer would repeat every log on stdout.
    transformers = library("transformers")
    trainer.remove_callback(transformers.PrinterCallback)
    trainer.remove_callback(transformers.ProgressCallback)
    return trainer


def _kto_weights(dataset: Any) -> dict[str, float]:
    # KTO wants the weighted counts of desirable and undesirable examples to be
    # about equal; weighting the rarer side does that without dropping data.
    labels = list(dataset["label"])
    desirable = sum(1 for label in labels if label)
    undesirable = len(labels) - desirable
    if not desirable or not undesirable:
        raise ValidationError(
            f"KTO needs both desirable and undesirable examples; the export has "
            f"{desirable} desirable and {undesirable} undesirable"
        )
    if desirable >= undesirable:
        return {"desirable_weight": 1.0, "undesirable_weight": desirable / undesirable}
    return {"desirable_weight": undesirable / desirable, "undesirable_weight": 1.0}


def save_model(trainer: Any, tokenizer: Any, destination: Path, *, lora: bool) -> Any:
    """Save a plain model (LoRA merged in) that ``AutoModelForCausalLM`` loads as it is."""
    model = trainer.model
    if lora:
        model = model.merge_and_unload()
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    return model


def progress_callback(on_step: Callable[[int, float], None]) -> Any:
    """A transformers callback reporting each step and the latest logged loss."""
    transformers = library("transformers")

    callback_base: Any = transformers.TrainerCallback

    class StepReporter(callback_base):  # type: ignore[misc]
        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))
                on_step(int(state.global_step), self.losses[-1])

    return StepReporter()
