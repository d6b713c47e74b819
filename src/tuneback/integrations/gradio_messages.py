"""How tuneback reads a Gradio Chatbot's messages, and marks an answer with its ids.

An answer's message carries its ids in ``metadata["id"]``
(``tuneback:<conversation>:<message>:<run>``), which the Chatbot keeps and
shows nothing of; every event that sends the chat back brings them along.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

MARK = "tuneback"


@dataclass(frozen=True)
class Turn:
    """The ids an answer's message carries: its conversation, its message and its run."""

    run_id: str
    conversation_id: str | None = None
    message_id: str | None = None

    def encode(self) -> str:
        return ":".join((MARK, self.conversation_id or "", self.message_id or "", self.run_id))

    @classmethod
    def decode(cls, value: object) -> Turn | None:
        if not isinstance(value, str):
            return None
        parts = value.split(":")
        if len(parts) != 4 or parts[0] != MARK or not parts[3]:
            return None
        return cls(run_id=parts[3], conversation_id=parts[1] or None, message_id=parts[2] or None)


def turn_of(message: object) -> Turn | None:
    """The ids on a Chatbot message (a dict or ``gr.ChatMessage``); None for others."""
    metadata = (
        message.get("metadata")
        if isinstance(message, Mapping)
        else getattr(message, "metadata", None)
    )
    return Turn.decode(metadata.get("id")) if isinstance(metadata, Mapping) else None


def text_of(content: object) -> str:
    """The text in a Chatbot message's content (its files and components left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        return text_of(content.get("content")) if "content" in content else ""
    if isinstance(content, Sequence):
        return "".join(text_of(part) for part in content)
    if isinstance(content, gr.ChatMessage):
        return text_of(content.content)
    return ""


def role_of(message: object) -> str | None:
    role = message.get("role") if isinstance(message, Mapping) else getattr(message, "role", None)
    return role if role in ("user", "assistant", "system") else None


def last_turn(history: Sequence[object]) -> Turn | None:
    for message in reversed(history):
        turn = turn_of(message)
        if turn is not None:
            return turn
    return None


def _position(chat: Sequence[object], index: object) -> int | None:
    """A Chatbot event's index (an int, or [message, part]) as a position in ``chat``."""
    if isinstance(index, (list, tuple)):
        index = index[0] if index else None
    if isinstance(index, int) and -len(chat) <= index < len(chat):
        return index % len(chat)
    return None


def message_at(chat: Sequence[object], index: object) -> object | None:
    """The message at a Chatbot event's index."""
    position = _position(chat, index)
    return None if position is None else chat[position]


def answer_at(chat: Sequence[object], index: object) -> Turn | None:
    """The answer at ``index``, or the first after it: retry and undo point at the question."""
    position = _position(chat, index)
    return None if position is None else last_turn(list(reversed(chat[position:])))


def trailing(chat: Sequence[object], role: str) -> int:
    """Where the run of ``role`` messages that ends ``chat`` begins (``len(chat)`` if none)."""
    start = len(chat)
    while start > 0 and role_of(chat[start - 1]) == role:
        start -= 1
    return start


def with_turn(response: Any, turn: Turn) -> Any:
    """``response`` (a message, or a list ending with one) with ``turn`` in its metadata."""
    if isinstance(response, str):
        return {"role": "assistant", "content": response, "metadata": {"id": turn.encode()}}
    if isinstance(response, Mapping) and "content" in response:
        metadata = dict(response.get("metadata") or {})
        if "title" in metadata:  # a "thought": its id places it in a tree of thoughts
            return response
        return {**response, "metadata": {**metadata, "id": turn.encode()}}
    if isinstance(response, gr.ChatMessage) and "title" not in (response.metadata or {}):
        response.metadata = {**(response.metadata or {}), "id": turn.encode()}
        return response
    if isinstance(response, list) and response:
        return [*response[:-1], with_turn(response[-1], turn)]
    return response


__all__ = [
    "MARK",
    "Turn",
    "answer_at",
    "last_turn",
    "message_at",
    "role_of",
    "text_of",
    "trailing",
    "turn_of",
    "with_turn",
]
