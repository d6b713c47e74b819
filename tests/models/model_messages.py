"""Conversations and stream readers shared by the model tests."""

from __future__ import annotations

from collections.abc import Iterator

from tuneback.domain.conversation import ChatMessage
from tuneback.models import Usage


def ask(text: str, *, system: str | None = None) -> list[ChatMessage]:
    """A conversation of one user message, after an optional system prompt."""
    messages = [ChatMessage(role="system", content=system)] if system else []
    return [*messages, ChatMessage(role="user", content=text)]


def drain(stream: Iterator[str | Usage]) -> tuple[list[str], list[Usage]]:
    """Every chunk and every usage a stream yields, in order."""
    chunks: list[str] = []
    usages: list[Usage] = []
    for item in stream:
        if isinstance(item, Usage):
            usages.append(item)
        else:
            assert not usages, "text came after the usage"
            chunks.append(item)
    return chunks, usages
