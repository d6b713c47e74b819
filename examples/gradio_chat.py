"""A Gradio chat whose answers are rated with 👍/👎 (and a comment) into tuneback —
Gradio's canonical feedback app (a ChatInterface with ``chatbot.like``), on tuneback.

    export TUNEBACK_URL=http://127.0.0.1:8000 TUNEBACK_API_KEY=tb_…
    python examples/gradio_chat.py        # then open http://127.0.0.1:7860

With ``OPENAI_BASE_URL`` (or ``OPENAI_API_KEY``) set it answers with that
OpenAI-compatible model (``MODEL``, default gpt-4o-mini); without, it echoes,
so it runs anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import gradio as gr

from tuneback.integrations.gradio import text_of, track

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

USE_OPENAI = bool(os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini" if USE_OPENAI else "echo")


def reply(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
    """Yield the answer so far, as a streaming ChatInterface function does."""
    if not USE_OPENAI:
        yield f"You said: {message}"
        return
    import openai

    messages = [{"role": m["role"], "content": text_of(m["content"])} for m in history]
    messages.append({"role": "user", "content": message})
    stream = openai.OpenAI().chat.completions.create(
        model=MODEL, messages=cast("list[ChatCompletionMessageParam]", messages), stream=True
    )
    text = ""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            yield text


demo = track(gr.ChatInterface(reply, title="Chat", api_name="chat"), model=MODEL)

if __name__ == "__main__":
    demo.launch()
