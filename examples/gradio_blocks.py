"""Gradio's "chatbot with like" app, built with ``gr.Blocks``, logging into tuneback.

A Chatbot, a Textbox, a submit handler that adds the question and then one that
streams the answer, 👍/👎 with ``chatbot.like`` and a Clear button: the app as
Gradio teaches it, plus one line, ``track(demo, ...)``. Each answer becomes a
run in a tuneback conversation and each 👍/👎 a rating on it.

    export TUNEBACK_URL=http://127.0.0.1:8000 TUNEBACK_API_KEY=tb_…
    python examples/gradio_blocks.py      # then open http://127.0.0.1:7860

    # or inside tuneback's own server, logging into it:
    tuneback serve --gradio examples/gradio_blocks.py:demo   # http://127.0.0.1:8000/gradio

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


def answer_parts(history: list[dict[str, Any]]) -> Iterator[str]:
    """The answer to the chat so far, piece by piece."""
    if not USE_OPENAI:
        words = f"You said: {text_of(history[-1]['content'])}".split(" ")
        yield from (word if i == 0 else f" {word}" for i, word in enumerate(words))
        return
    import openai

    messages = [{"role": m["role"], "content": text_of(m["content"])} for m in history]
    stream = openai.OpenAI().chat.completions.create(
        model=MODEL, messages=cast("list[ChatCompletionMessageParam]", messages), stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


def add_message(history: list[dict[str, Any]], message: str) -> tuple[Any, Any]:
    """Show the question at once and lock the box while the answer comes."""
    history = [*history, {"role": "user", "content": message}]
    return history, gr.Textbox(value="", interactive=False)


def bot(history: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Stream the answer into a new assistant message."""
    history = [*history, {"role": "assistant", "content": ""}]
    for part in answer_parts(history[:-1]):
        history[-1] = {"role": "assistant", "content": history[-1]["content"] + part}
        yield history


def vote(data: gr.LikeData) -> None:
    """The app's own like handler still runs; tuneback records the rating beside it."""
    print("liked" if data.liked else "disliked", data.index)


with gr.Blocks(title="Chat") as demo:
    chatbot = gr.Chatbot(label="Chat")
    box = gr.Textbox(placeholder="Ask something", show_label=False, submit_btn=True)
    clear = gr.Button("Clear")

    added = box.submit(add_message, [chatbot, box], [chatbot, box], queue=False)
    answered = added.then(bot, chatbot, chatbot, api_name="bot")
    answered.then(lambda: gr.Textbox(interactive=True), None, [box])
    chatbot.like(vote, None, None, api_name="vote")
    clear.click(lambda: None, None, chatbot, queue=False)

track(demo, model=MODEL)

if __name__ == "__main__":
    demo.launch()
