"""``echo``: a deterministic model that streams the last user message back.

It needs nothing installed and answers instantly, which makes it the model for demos,
for trying the UI, and for tests of everything downstream of a model. ``echo:slow``
pauses between words so streaming and the stop button can be watched by eye.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ConfigurationError
from tuneback.models.base import ModelAdapter, ModelOptions, Usage

SLOW_DELAY = 0.05
"""Seconds between words for ``echo:slow``: visible, yet a reply still takes a second."""

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


def split_words(text: str) -> list[str]:
    """Split into words that keep their trailing whitespace, so chunks join back exactly."""
    return [piece for piece in _WORD_BOUNDARY.split(text) if piece]


class EchoModel(ModelAdapter):
    """Replies with the last user message, one word per chunk."""

    def __init__(self, *, delay: float = 0.0, spec: str = "echo", name: str | None = None) -> None:
        super().__init__(spec=spec, name=name or "Echo", context_window=4096)
        self.delay = delay

    @property
    def blocks(self) -> bool:
        return self.delay > 0

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        words = split_words(last)
        if options.max_tokens is not None:
            # One word stands for one token here: enough for tests of truncation.
            words = words[: options.max_tokens]
        for word in words:
            if self.delay:
                time.sleep(self.delay)
            yield word


def create_echo(argument: str | None = None, *, delay: float | None = None) -> EchoModel:
    """Factory for ``echo`` and ``echo:slow``; ``delay`` sets the pause per word."""
    if argument is None:
        return EchoModel(delay=delay or 0.0)
    if argument == "slow":
        return EchoModel(delay=SLOW_DELAY if delay is None else delay, spec="echo:slow")
    raise ConfigurationError(f"echo takes no argument or 'slow', got {argument!r}")
