"""``train_model``: export the data, run the TRL trainer, save a model ready to serve.

The steps: export the method's format (``sft``/``dpo``/``kto``, the same rules
as ``tuneback export``) to JSON lines in a scratch directory; load it with
``datasets``; train LoRA adapters (or every weight with ``lora=False``) on the
CPU; merge the adapters into the weights and save model and tokenizer to
``output``, with ``tuneback-training.json`` saying how it was made. The result
loads with ``AutoModelForCausalLM.from_pretrained`` and serves with
``tuneback serve --model transformers:<output>``.

A GGUF base (``local``, the bundled SmolLM2, or ``gguf:PATH``) is de-quantised
into a cached directory first (see ``training/base.py``), and the trained model
is also written back as ``<output>/model.gguf``, which llama.cpp serves with
``tuneback serve -m gguf:<output>/model.gguf``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tuneback.errors import ConflictError, ValidationError
from tuneback.export import ExportFilters, ExportProgress, ExportRules, export_dataset
from tuneback.storage import Store
from tuneback.training.base import StatusReport, resolve_base
from tuneback.training.gguf_files import GGUF_FILE, write_gguf
from tuneback.training.options import Method, TrainingOptions, TrainingSummary
from tuneback.training.trainers import (
    build_trainer,
    library,
    load_base,
    progress_callback,
    save_model,
)

StepReport = Callable[[int, int, float], None]
"""Called after each step with (step, max steps, latest loss)."""

PROVENANCE = "tuneback-training.json"


def train_model(
    store: Store,
    *,
    method: Method,
    base_model: str | Path,
    output: str | Path,
    filters: ExportFilters | None = None,
    rules: ExportRules | None = None,
    options: TrainingOptions | None = None,
    force: bool = False,
    export_progress: ExportProgress | None = None,
    on_step: StepReport | None = None,
    on_status: StatusReport | None = None,
    gguf_cache: Path | None = None,
) -> TrainingSummary:
    """Train ``base_model`` on this store's feedback and save the result in ``output``.

    ``base_model`` is a model directory, ``local`` or ``gguf:PATH``; ``on_status``
    hears about the slow stages (de-quantising, writing the GGUF);
    ``gguf_cache`` is where de-quantised GGUF bases are kept.
    """
    started = time.perf_counter()
    options = options or TrainingOptions()
    destination = _destination(Path(output).expanduser(), force=force)
    datasets = library("datasets")
    base = resolve_base(base_model, cache=gguf_cache, on_status=on_status)
    with tempfile.TemporaryDirectory(prefix="tuneback-train-") as scratch, _quiet_libraries():
        work = Path(scratch)
        exported = export_dataset(
            store,
            format=method,
            output=work / "data",
            filters=filters,
            rules=rules,
            progress=export_progress,
        )
        if exported.rows_written == 0:
            reasons = "; ".join(f"{count} {why}" for why, count in exported.skipped.items())
            raise ValidationError(
                f"no {method} rows to train on" + (f" (skipped: {reasons})" if reasons else "")
            )
        dataset = datasets.load_dataset(
            "json",
            data_files=exported.files[0].path,
            split="train",
            cache_dir=str(work / "cache"),
        )
        model, tokenizer = load_base(base.directory)
        library("transformers").set_seed(options.seed)
        report = progress_callback(
            lambda step, loss: on_step(step, options.max_steps, loss) if on_step else None
        )
        trainer = build_trainer(
            method, model, tokenizer, dataset, options, work / "checkpoints", [report]
        )
        trainer.train()
        trained = save_model(trainer, tokenizer, destination, lora=options.lora)
        gguf = None
        if base.gguf is not None:
            if on_status:
                on_status(f"gguf      writing {GGUF_FILE} ({options.gguf_type})")
            gguf = write_gguf(
                trained, base.gguf, destination / GGUF_FILE, tensor_type=options.gguf_type
            )
        losses: list[float] = report.losses
        summary = TrainingSummary(
            method=method,
            base_model=base.label,
            output=str(destination),
            rows=exported.rows_written,
            rows_skipped=exported.rows_skipped,
            skipped=exported.skipped,
            steps=int(trainer.state.global_step),
            first_loss=losses[0] if losses else None,
            last_loss=losses[-1] if losses else None,
            lora=options.lora,
            seconds=round(time.perf_counter() - started, 3),
            gguf=str(gguf) if gguf else None,
        )
    provenance = {
        "summary": summary.model_dump(mode="json"),
        "options": options.model_dump(mode="json"),
        "filters": (filters or ExportFilters()).model_dump(mode="json"),
        "rules": (rules or ExportRules()).model_dump(mode="json"),
    }
    (destination / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    return summary


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    # datasets and transformers draw their own progress bars for every small
    # step (loading, tokenising); the caller shows the one that matters.
    datasets, hub = library("datasets"), library("transformers.utils.logging")
    datasets.disable_progress_bars()
    hub.disable_progress_bar()
    try:
        yield
    finally:
        datasets.enable_progress_bars()
        hub.enable_progress_bar()


def _destination(path: Path, *, force: bool) -> Path:
    # A model directory is only ever written into when it is empty, or when it
    # holds a model tuneback trained before and --force says to replace it.
    if path.exists() and not path.is_dir():
        raise ValidationError(f"{path} is a file: --output takes a directory")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise ConflictError(f"{path} is not empty: pass --force to train into it anyway")
        if not (path / PROVENANCE).exists():
            raise ConflictError(
                f"{path} holds files tuneback did not write: choose an empty directory"
            )
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()
