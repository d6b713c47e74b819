"""LangChain runnables (chat models, chains) as tuneback models, without importing LangChain.

Anything with LangChain's ``Runnable`` shape works: ``stream(input)`` yielding
chunks and ``invoke(input)``. The input is the conversation as
``[(role, content), ...]`` tuples, which every LangChain chat model and
``ChatPromptTemplate``-based chain accepts; chunks are message chunks (their
``content`` is used) or plain strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tuneback.domain.conversation import ChatMessage
from tuneback.models.base import ModelAdapter, ModelOptions, Usage

_ROLES = {"system": "system", "user": "human", "assistant": "ai", "tool": "tool"}


def is_runnable(obj: object) -> bool:
    return callable(getattr(obj, "stream", None)) and callable(getattr(obj, "invoke", None))


def _text(chunk: Any) -> str:
    if isinstance(chunk, str):
        return chunk
    content = getattr(chunk, "content", chunk)
    if isinstance(content, list):  # content blocks: keep the text ones
        return "".join(
            block.get("text", "") if isinstance(block, dict) else str(block) for block in content
        )
    return str(content)


class RunnableModel(ModelAdapter):
    """Streams a LangChain runnable's output."""

    def __init__(self, runnable: Any, *, name: str | None = None) -> None:
        label = name or getattr(runnable, "model_name", None) or type(runnable).__name__
        super().__init__(spec=f"langchain:{label}", name=str(label))
        self.runnable = runnable

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        conversation = [(_ROLES[m.role], m.content) for m in messages]
        config = {"metadata": options.as_kwargs()} if options.as_kwargs() else None
        for chunk in self.runnable.stream(conversation, config=config):
            text = _text(chunk)
            if text:
                yield text
