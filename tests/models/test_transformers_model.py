"""``transformers:<dir>`` with a tiny random Llama built in the test (no hub)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.models.model_messages import ask, drain
from tuneback.errors import ModelUnavailableError
from tuneback.models import ModelOptions, complete, resolve_model
from tuneback.models.transformers_dir import TransformersModel

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")
tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is not installed")

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
# fmt: off
WORDS = [
    "hello", "world", "the", "a", "cat", "dog", "sat", "on", "mat", "is", "what", "capital",
    "of", "france", "paris", "user", "assistant", "system", ":", "say", "hi", "tell", "me",
    "story", "once", "upon", "time", "there", "was", "little", "red", "big", "blue", "green",
]
# fmt: on
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }} : {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant :{% endif %}"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-llama")
    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    backend.decoder = tokenizers.decoders.WordPiece()  # joins words with spaces
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)

    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    # A random model may pick the end token at once; never ending keeps the counts exact.
    model.generation_config.eos_token_id = None
    model.save_pretrained(directory)
    return directory


def load(model_dir: Path) -> TransformersModel:
    model = resolve_model(f"transformers:{model_dir}")
    assert isinstance(model, TransformersModel)
    model.start_loading()
    model.wait_until_loaded(timeout=120)
    return model


def test_streams_tokens_and_real_usage(model_dir: Path) -> None:
    model = load(model_dir)
    messages = ask("what is the capital of france", system="say hi")

    chunks, [usage] = drain(model.stream(messages, ModelOptions(max_tokens=8, temperature=0)))

    assert chunks
    assert all(chunks)
    # "system : say hi\nuser : what is the capital of france\nassistant :" in words.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (14, 8, False)
    assert (model.name, model.context_window, model.status) == (model_dir.name, 256, "ready")
    assert model.count_tokens("hello world cat") == 3


def test_the_same_seed_gives_the_same_answer(model_dir: Path) -> None:
    model = load(model_dir)
    options = ModelOptions(max_tokens=6, temperature=1.0, seed=42)

    assert complete(model, ask("tell me a story"), options) == complete(
        model, ask("tell me a story"), options
    )


def test_close_mid_stream_stops_the_generation_thread(model_dir: Path) -> None:
    model = load(model_dir)
    options = ModelOptions(max_tokens=240, temperature=0)
    started = time.monotonic()
    complete(model, ask("tell me a story"), options)
    whole_answer = time.monotonic() - started

    stream = model.stream(ask("tell me a story"), options)
    assert next(stream)
    started = time.monotonic()
    stream.close()

    # close() waits for the thread; had it not been told to stop, that wait would
    # last about as long as a whole answer.
    assert time.monotonic() - started < whole_answer / 3
    assert not [t for t in threading.enumerate() if t.name.startswith("tuneback-generate-")]


def test_a_directory_without_weights_fails_to_load(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    model = resolve_model(f"transformers:{tmp_path}")
    model.start_loading()

    with pytest.raises(ModelUnavailableError, match=f"^transformers:{tmp_path}: cannot load"):
        complete(model, ask("hi"))
    assert model.status == "error"
