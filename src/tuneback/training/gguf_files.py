"""GGUF in and out of training: a GGUF base becomes a trainable model, a trained model a GGUF.

**In.** transformers reads a GGUF file and de-quantises it into an ordinary
model, but keeps a marker saying it is quantised, and TRL refuses to train such a
model. :func:`dequantize_gguf` loads the file once, copies the weights into a
model without the marker and saves it, with the tokenizer and chat template,
as a plain Hugging Face directory. Loading a GGUF that way takes about half a
minute on two cores (most of it converting the tokenizer), so the directory is
kept in a cache keyed by the file's path, size and modification time.

**Out.** :func:`write_gguf` writes a trained model back as a GGUF file that
llama.cpp runs: every key/value of the base file (architecture, tokenizer, chat
template, special tokens) is copied as it is, and the model's tensors are
written under the GGUF names. transformers un-permutes the rows of llama's
query and key projections when it reads a GGUF (llama.cpp orders the two
halves of each rotary pair differently from Hugging Face); they are permuted
back here, otherwise llama.cpp would rotate the wrong dimensions and answer
nonsense. Norm vectors are always F32; the matrices take the chosen type.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuneback.errors import ConfigurationError
from tuneback.training.options import DEFAULT_GGUF_TYPE, GgufType
from tuneback.training.trainers import library

GGUF_FILE = "model.gguf"
SUPPORTED_ARCHITECTURES = ("llama",)
"""Architectures whose tensor layout this module knows how to write back."""

INSTALL_GGUF = "pip install 'tuneback[train]'  (the gguf package reads and writes GGUF files)"


def cache_root() -> Path:
    """Where de-quantised GGUF models are kept: ``$XDG_CACHE_HOME/tuneback/gguf``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuneback" / "gguf"


def dequantized_directory(path: Path, cache: Path | None = None) -> Path:
    """Where :func:`dequantize_gguf` keeps (or will keep) ``path``'s model."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return (cache or cache_root()) / f"{path.stem}-{key.hexdigest()[:16]}"


def dequantize_gguf(path: Path, cache: Path | None = None) -> Path:
    """A Hugging Face directory holding ``path``'s model de-quantised to float32.

    Made once per GGUF file (same path, size and modification time) under
    ``cache`` (default :func:`cache_root`); later calls return the directory.
    """
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such GGUF file")
    library("gguf")  # transformers needs it to read GGUF; fail with the install hint
    directory = dequantized_directory(path, cache)
    if (directory / "config.json").is_file():
        return directory
    transformers = library("transformers")
    torch = library("torch")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigurationError(f"transformers cannot load {path}: {exc}") from None
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    settings.pop("_model_name_or_path", None)
    config = type(loaded.config).from_dict(settings)
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the final place and renamed, so a half-written cache is never used.
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        plain.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        os.replace(scratch, directory)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (directory / "config.json").is_file():
            raise
    return directory


def check_writable(template: Path) -> None:
    """Refuse, before any training, a GGUF base whose layout cannot be written back."""
    gguf = library("gguf")
    architecture = _architecture(gguf.GGUFReader(str(template)))
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ConfigurationError(
            f"{template}: training writes GGUF back for {', '.join(SUPPORTED_ARCHITECTURES)} "
            f"models only, and this one is {architecture!r}"
        )


def write_gguf(
    model: Any,
    template: Path,
    destination: Path,
    *,
    tensor_type: GgufType = DEFAULT_GGUF_TYPE,
) -> Path:
    """Write ``model`` (a transformers llama) as a GGUF with ``template``'s metadata."""
    gguf = library("gguf")
    numpy = library("numpy")
    reader = gguf.GGUFReader(str(template))
    architecture = _architecture(reader)
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ConfigurationError(f"cannot write a GGUF for a {architecture!r} model")
    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(config.num_hidden_layers))
    quantization = _QUANTIZATION[tensor_type]
    writer = gguf.GGUFWriter(str(destination), architecture)
    _copy_metadata(gguf, reader, writer, file_type=quantization[1])
    tied = bool(getattr(config, "tie_word_embeddings", False))
    reorder = _rotary_reorder(
        numpy, int(config.num_attention_heads), int(config.num_key_value_heads)
    )
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConfigurationError(f"no GGUF name for the tensor {hf_name}")
        data = tensor.detach().to("cpu").float().numpy()
        data = reorder(name, data)
        if data.ndim == 1:
            writer.add_tensor(name, data.astype(numpy.float32))
            continue
        if tensor_type == "f32":
            writer.add_tensor(name, data.astype(numpy.float32))
        elif tensor_type == "f16":
            writer.add_tensor(name, data.astype(numpy.float16))
        else:
            qtype = getattr(gguf.GGMLQuantizationType, quantization[0])
            packed = gguf.quants.quantize(data, qtype)
            writer.add_tensor(name, packed, raw_shape=packed.shape, raw_dtype=qtype)
    destination.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return destination


_QUANTIZATION: dict[GgufType, tuple[str, str]] = {
    "f32": ("F32", "ALL_F32"),
    "f16": ("F16", "MOSTLY_F16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
    "q4_1": ("Q4_1", "MOSTLY_Q4_1"),
}


def _architecture(reader: Any) -> str:
    field = reader.fields.get("general.architecture")
    return str(field.contents()) if field is not None else "unknown"


def _copy_metadata(gguf: Any, reader: Any, writer: Any, *, file_type: str) -> None:
    array = gguf.GGUFValueType.ARRAY
    for key, field in reader.fields.items():
        # The header fields and the architecture are the writer's own.
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            writer.add_file_type(getattr(gguf.LlamaFileType, file_type))
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == array else None
        writer.add_key_value(key, field.contents(), kind, sub_type=sub_type)


def _rotary_reorder(numpy: Any, heads: int, kv_heads: int) -> Callable[[str, Any], Any]:
    # Inverse of transformers' reverse permutation: within each head, interleave
    # the two halves of the rotary dimensions the way llama.cpp expects.
    def permute(weights: Any, n_head: int) -> Any:
        rows = weights.shape[0]
        return (
            weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape)
        )

    def reorder(name: str, weights: Any) -> Any:
        if name.endswith("attn_q.weight"):
            return numpy.ascontiguousarray(permute(weights, heads))
        if name.endswith("attn_k.weight"):
            return numpy.ascontiguousarray(permute(weights, kv_heads))
        return weights

    return reorder
