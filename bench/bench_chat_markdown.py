"""What rendering a streaming answer as markdown costs: the chat's SSE stream, gathered or not.

For a scripted answer of N chunks (prose, a fenced code block and a table, as
models write them), this drives the chat's server-sent event stream (the same
code ``POST /ui/chat`` returns) and counts its ``delta`` events, the time spent
in the markdown renderer, and the wall time, three ways: the plain text stream
with no rendering (the baseline: what the chat sent before), every chunk
re-rendered, and chunks gathered for ``RENDER_EVERY`` seconds (what ships). It
does so with the model at full speed and at a steady rate per chunk.

    python bench/bench_chat_markdown.py [--chunks 1500] [--delay 0.005]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tuneback.models import ScriptedModel
from tuneback.server.web import chat as web_chat
from tuneback.server.web import markdown
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.storage import Store


def answer_chunks(n: int) -> list[str]:
    """About n chunks of a markdown answer: prose, code and a table, repeated."""
    pattern = (
        ["Here ", "is ", "the ", "**plan**", ":\n\n", "```python\n", "def step(w):\n",
         "    return w - 0.1 * grad(w)\n", "```\n\n", "| rate ", "| steps |\n", "|---|---|\n",
         "| 0.1 ", "| 120 |\n", "| 1.0 ", "| 9 |\n\n", "Each ", "step ", "moves ", "downhill.\n\n"]
    )  # fmt: skip
    return (pattern * (n // len(pattern) + 1))[:n]


def run_once(
    chat: ChatService, model: ScriptedModel, chunks: list[str], delay: float, every: float | None
) -> tuple[int, float, int, float]:
    """(delta events, seconds rendering, renders, wall seconds) for one streamed answer."""
    model.enqueue(chunks=chunks, delay=delay)
    conversation = chat.start_conversation(project="bench", user="bench", model="scripted")
    question = chat.add_user_message(conversation.id, "Plan?")
    reply = chat.reply(question.id)
    spent = [0.0, 0]
    real_render = markdown.render_markdown

    def timed(text: str) -> str:
        started = time.perf_counter()
        try:
            return real_render(text)
        finally:
            spent[0] += time.perf_counter() - started
            spent[1] += 1

    web_chat.render_markdown = timed  # type: ignore[assignment]
    naive = every == 0
    if naive:
        # Every chunk re-renders the whole answer so far.
        async def every_chunk(chunks_in, _every):  # type: ignore[no-untyped-def]
            text = ""
            for chunk in chunks_in:
                text += chunk
                yield chunk, timed(text)

        saved_naive = web_chat._rendered
        web_chat._rendered = every_chunk  # type: ignore[assignment]
    elif every is not None:
        web_chat.RENDER_EVERY = every
    plain = every is None
    if plain:
        # The stream as it was: each chunk as text, rendered once at the end.
        async def text_only(chunks_in, _every):  # type: ignore[no-untyped-def]
            for chunk in chunks_in:
                yield chunk, ""

        saved = web_chat._rendered
        web_chat._rendered = text_only  # type: ignore[assignment]
    response = web_chat._stream(chat.store, reply, user_message_id=question.id)

    async def consume() -> int:
        deltas = 0
        async for event in response.body_iterator:
            deltas += str(event).startswith("event: delta")
        return deltas

    started = time.perf_counter()
    deltas = asyncio.run(consume())
    wall = time.perf_counter() - started
    web_chat.render_markdown = real_render
    if plain:
        web_chat._rendered = saved  # type: ignore[assignment]
    if naive:
        web_chat._rendered = saved_naive  # type: ignore[assignment]
    return deltas, spent[0], int(spent[1]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1500)
    parser.add_argument("--delay", type=float, default=0.005, help="seconds per chunk, paced run")
    args = parser.parse_args()
    chunks = answer_chunks(args.chunks)
    shipped = web_chat.RENDER_EVERY
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        model = ScriptedModel(name="scripted")
        chat = ChatService(store, ModelCatalog([model]))
        size = len("".join(chunks))
        print(f"{len(chunks)} chunks, {size:,} characters of markdown")
        header = ("model pace", "stream", "deltas", "renders", "render s", "wall s")
        print("{:<22}{:<28}{:>8}{:>9}{:>10}{:>9}".format(*header))
        for pace, delay in (("full speed", 0.0), (f"{delay_ms(args.delay)} per chunk", args.delay)):
            for label, every in (
                ("text only (before)", None),
                ("render every chunk", 0.0),
                (f"gathered {shipped * 1000:.0f} ms (ships)", shipped),
            ):
                deltas, render_s, renders, wall = run_once(chat, model, chunks, delay, every)
                print(f"{pace:<22}{label:<28}{deltas:>8}{renders:>9}{render_s:>10.2f}{wall:>9.2f}")
        web_chat.RENDER_EVERY = shipped
        store.close()


def delay_ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


if __name__ == "__main__":
    main()
