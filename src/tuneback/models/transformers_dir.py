"""``transformers:<dir>``: a Hugging Face model directory run with torch on the CPU.

Meant for the models ``tuneback train`` writes, so people can chat with a fine-tune
and keep rating it. Only local files are read (``local_files_only``): a directory
that lacks its tokenizer fails with a message instead of reaching for the hub.

``model.generate`` blocks until it finishes, so it runs in a thread that feeds a
``TextIteratorStreamer``; the stream reads from the streamer. Cancelling sets an
event that a stopping criterion checks after every token, so the thread ends after
at most one more token, and the stream waits for it before returning. Generation
only reads the weights, so several streams may run at once, each in its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ConfigurationError, ModelError, ModelUnavailableError
from tuneback.models.base import (
    ModelAdapter,
    ModelOptions,
    Usage,
    estimate_tokens,
    messages_as_dicts,
)

INSTALL_HINT = "pip install 'tuneback[train]'  (torch==2.13.0 and transformers)"
DEFAULT_MAX_TOKENS = 512
STREAMER_TIMEOUT = 300.0
"""Seconds the stream waits for one token before giving up on a stuck generate()."""


class _GenerationWatch:
    """Stopping criterion: stops on cancel and counts the tokens generated so far."""

    def __init__(self, prompt_length: int) -> None:
        self.prompt_length = prompt_length
        self.generated = 0
        self.cancelled = threading.Event()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.generated = int(input_ids.shape[-1]) - self.prompt_length
        stop = self.cancelled.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class TransformersModel(ModelAdapter):
    """A causal language model loaded from a local directory."""

    needs_loading = True

    def __init__(
        self,
        directory: Path,
        *,
        spec: str,
        name: str | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        context_window: int | None = None,
    ) -> None:
        super().__init__(
            spec=spec, name=name or directory.name, context_window=context_window or 2048
        )
        self.directory = directory
        self.default_max_tokens = default_max_tokens
        self._context_window_given = context_window is not None
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        try:
            import torch  # noqa: F401  (fail here, with the install hint, if missing)
            import transformers
        except ImportError:
            raise ModelUnavailableError(
                f"{self.spec}: torch and transformers are not installed — {INSTALL_HINT}"
            ) from None
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(self.directory), local_files_only=True
            )
            model: Any = transformers.AutoModelForCausalLM.from_pretrained(
                str(self.directory), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"{self.spec}: cannot load a model from {self.directory}: {exc}"
            ) from exc
        model.eval()
        if not self._context_window_given:
            self.context_window = int(getattr(model.config, "max_position_embeddings", 2048))
        self._tokenizer = tokenizer
        self._model = model

    def count_tokens(self, text: str) -> int:
        """Real tokenizer counts once loaded; an estimate if loading failed."""
        self.start_loading()
        self._load_done.wait()
        if self._tokenizer is None:
            return estimate_tokens(text)
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _prompt_ids(self, messages: list[ChatMessage]) -> Any:
        tokenizer = self._tokenizer
        if tokenizer.chat_template:
            encoded = tokenizer.apply_chat_template(
                messages_as_dicts(messages),
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            return encoded["input_ids"]
        # A base model without a template: a plain transcript still gets an answer.
        transcript = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
        return tokenizer(transcript, return_tensors="pt")["input_ids"]

    def _generation_kwargs(self, options: ModelOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": options.max_tokens or self.default_max_tokens}
        temperature = options.temperature
        if temperature is not None and temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        elif temperature == 0:
            kwargs["do_sample"] = False
        if options.top_p is not None:
            kwargs["top_p"] = options.top_p
        if options.stop:
            kwargs.update(stop_strings=options.stop, tokenizer=self._tokenizer)
        return kwargs

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        import torch
        import transformers

        input_ids = self._prompt_ids(messages)
        prompt_length = int(input_ids.shape[-1])
        if prompt_length >= self.context_window:
            raise ModelError(
                f"{self.spec}: the conversation is too long for the model's context window "
                f"({prompt_length} tokens, window {self.context_window}) — start a new chat",
                details={"backend": self.spec, "reason": "context_length_exceeded"},
            )
        streamer: Any = transformers.TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=STREAMER_TIMEOUT
        )
        watch = _GenerationWatch(prompt_length)
        failure: list[BaseException] = []
        pad_token_id = self._tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = self._tokenizer.eos_token_id

        def run() -> None:
            try:
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                with torch.inference_mode():
                    self._model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        streamer=streamer,
                        stopping_criteria=transformers.StoppingCriteriaList([watch]),
                        pad_token_id=pad_token_id,
                        **self._generation_kwargs(options),
                    )
            except BaseException as exc:
                failure.append(exc)
                streamer.end()  # wake the reader, which then raises the failure

        thread = threading.Thread(target=run, name=f"tuneback-generate-{self.spec}", daemon=True)
        thread.start()
        try:
            for text in streamer:
                if failure:
                    break
                if text:
                    yield text
        finally:
            # On cancel, generate() stops after its current token; joining means
            # a closed stream leaves no work behind on the CPU.
            watch.cancelled.set()
            thread.join()
        if failure:
            raise ModelError(
                f"{self.spec}: generation failed: {type(failure[0]).__name__}: {failure[0]}",
                details={"backend": self.spec, "reason": "backend_error"},
            ) from failure[0]
        yield Usage(prompt_length, max(watch.generated, 0))


def create_transformers(
    argument: str | None = None,
    *,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    context_window: int | None = None,
    name: str | None = None,
) -> TransformersModel:
    """Factory for ``transformers:<dir>``."""
    if not argument:
        raise ConfigurationError("transformers needs a model directory: transformers:<dir>")
    directory = Path(argument).expanduser()
    if not (directory / "config.json").is_file():
        raise ConfigurationError(
            f"transformers:{argument}: not a model directory (no config.json in {directory})"
        )
    return TransformersModel(
        directory,
        spec=f"transformers:{argument}",
        name=name,
        default_max_tokens=default_max_tokens,
        context_window=context_window,
    )
