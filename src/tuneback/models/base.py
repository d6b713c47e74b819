"""The one contract every model backend implements.

A :class:`ModelAdapter` turns chat messages and :class:`ModelOptions` into a stream:
non-empty text chunks, then exactly one :class:`Usage`. The stream is a plain sync
generator, so cancelling is the caller's ordinary ``gen.close()``; every backend
releases what it holds (HTTP responses, llama.cpp contexts, generation threads) in
``finally`` blocks that run on that close.

Backends implement two hooks:

* ``_generate(messages, options)`` — yield text chunks and, when the backend knows
  them, one :class:`Usage` last. :meth:`ModelAdapter.stream` wraps it: it waits for
  loading, drops empty chunks, estimates usage when the backend gave none, and turns
  any stray exception into a :class:`~tuneback.errors.ModelError`, so callers only
  ever catch that one family.
* ``_load()`` — optional slow start (importing a backend, reading weights). It runs
  once, in a background thread started by :meth:`ModelAdapter.start_loading`.
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneback.domain.common import validate
from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ModelError, ModelUnavailableError

ModelStatus = Literal["loading", "ready", "error"]

CHARS_PER_TOKEN = 4
"""English text averages about four characters per token in BPE vocabularies."""

MESSAGE_OVERHEAD_TOKENS = 4
"""Chat templates wrap each message in role markers; about four tokens each."""


class ModelOptions(BaseModel):
    """Sampling options a caller may set; every backend maps the ones it supports.

    ``None`` means "the backend's default". Unknown fields are refused so a typo
    (``max_token``) fails loudly instead of being ignored.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: list[str] | None = None
    seed: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The options that were set, as keyword arguments for a backend call."""
        return self.model_dump(exclude_none=True)


def parse_options(data: Mapping[str, Any] | ModelOptions | None) -> ModelOptions:
    """Options from a request body; a bad field raises tuneback's ``ValidationError``."""
    if data is None:
        return ModelOptions()
    if isinstance(data, ModelOptions):
        return data
    return validate(ModelOptions, dict(data), what="model options")


@dataclass(frozen=True)
class Usage:
    """Tokens a generation consumed; ``estimated`` when the backend gave no counts."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_tokens(text: str) -> int:
    """A tokenizer-free guess: ``ceil(len / 4)``, and 0 only for empty text."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_usage(messages: Sequence[ChatMessage], completion: str) -> Usage:
    prompt = sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)
    return Usage(prompt, estimate_tokens(completion), estimated=True)


def messages_as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The ``[{"role", "content"}]`` shape that every chat API takes."""
    return [{"role": m.role, "content": m.content} for m in messages]


def _close(produced: Iterator[Any]) -> None:
    if isinstance(produced, Generator):
        produced.close()


class ModelAdapter(abc.ABC):
    """A model behind one streaming contract.

    ``spec`` is the string it was resolved from (``openai:gpt-4o-mini``), ``name``
    what the UI shows, ``context_window`` the token budget the chat service fits
    the history into.
    """

    spec: str
    name: str
    context_window: int

    needs_loading: bool = False
    """True when ``_load`` does real work; others are ready at once. Read by ``__init__``."""

    def __init__(self, *, spec: str, name: str | None = None, context_window: int = 4096) -> None:
        self.spec = spec
        self.name = name or spec
        self.context_window = context_window
        self._load_lock = threading.Lock()
        self._load_done = threading.Event()
        self._load_thread: threading.Thread | None = None
        self._load_error: str | None = None
        if not self.needs_loading:
            self._load_done.set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r} {self.status}>"

    # -- loading ---------------------------------------------------------------

    @property
    def status(self) -> ModelStatus:
        """``loading`` until a load has finished (or before one was started)."""
        if not self._load_done.is_set():
            return "loading"
        return "error" if self._load_error is not None else "ready"

    @property
    def load_error(self) -> str | None:
        """Why loading failed, written for the person who can fix it."""
        return self._load_error

    def start_loading(self) -> None:
        """Begin loading in a background thread; calling it again does nothing."""
        with self._load_lock:
            if self._load_done.is_set() or self._load_thread is not None:
                return
            self._load_thread = threading.Thread(
                target=self._run_load, name=f"tuneback-load-{self.spec}", daemon=True
            )
            self._load_thread.start()

    def wait_until_loaded(self, timeout: float | None = None) -> None:
        """Load if nobody has started to, wait, and raise if the model cannot serve."""
        self.start_loading()
        if not self._load_done.wait(timeout):
            raise ModelUnavailableError(
                f"{self.spec} is still loading — try again in a moment",
                details={"backend": self.spec, "status": "loading"},
            )
        if self._load_error is not None:
            raise ModelUnavailableError(
                self._load_error, details={"backend": self.spec, "status": "error"}
            )

    def _run_load(self) -> None:
        try:
            self._load()
        except ModelError as exc:
            self._load_error = exc.message
        except Exception as exc:
            self._load_error = f"{self.spec}: could not load the model: {exc}"
        finally:
            self._load_done.set()

    def _load(self) -> None:  # noqa: B027 - optional hook: most backends load nothing
        """Import the backend and read weights; runs once, off the request path."""

    # -- generation ------------------------------------------------------------

    @property
    def blocks(self) -> bool:
        """True when generating waits on a network, a device or a clock.

        The server then drains a reply in a worker thread, off its event loop. A
        model that answers at once from what it was given says False, and is run
        where the request is, saving the thread's round trip.
        """
        return True

    def stream(
        self, messages: Sequence[ChatMessage], options: ModelOptions
    ) -> Generator[str | Usage, None, None]:
        """Yield non-empty text chunks, then one :class:`Usage`.

        Stop early by calling ``close()`` on the returned generator: the backend
        stops generating and releases its connection.
        """
        self.wait_until_loaded()
        history = list(messages)
        produced = self._generate(history, options)
        usage: Usage | None = None
        pieces: list[str] = []
        try:
            for item in produced:
                if isinstance(item, Usage):
                    usage = item
                elif item:
                    pieces.append(item)
                    yield item
        except ModelError:
            raise
        except Exception as exc:
            # Backends map the failures they know; anything else still reaches
            # the caller as a ModelError, with the backend's own words.
            raise ModelError(
                f"{self.spec} failed: {type(exc).__name__}: {exc}",
                details={"backend": self.spec, "reason": "backend_error"},
            ) from exc
        finally:
            _close(produced)
        yield usage if usage is not None else estimate_usage(history, "".join(pieces))

    @abc.abstractmethod
    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        """Yield text chunks, and a :class:`Usage` last if the backend counts tokens."""

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes; backends with a tokenizer override the estimate."""
        return estimate_tokens(text)


def complete(
    adapter: ModelAdapter,
    messages: Sequence[ChatMessage],
    options: ModelOptions | None = None,
) -> tuple[str, Usage]:
    """Drain a stream into the whole reply and its usage."""
    pieces: list[str] = []
    usage: Usage | None = None
    for item in adapter.stream(messages, options or ModelOptions()):
        if isinstance(item, Usage):
            usage = item
        else:
            pieces.append(item)
    if usage is None:  # pragma: no cover - stream() always ends with a Usage
        raise ModelError(f"{adapter.spec} ended without reporting usage")
    return "".join(pieces), usage
