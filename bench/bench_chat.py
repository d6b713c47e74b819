"""What the chat service adds on top of the model: storing the question, the run and the answer.

For a scripted reply of N chunks, this times streaming it straight from the
adapter (the baseline) and through ``ChatService`` (add the user message,
stream, record the run and the answer in one transaction), on SQLite and
PostgreSQL, and prints the added milliseconds per reply and the ratio. With
``--local`` it also times the embedded model both ways (time to first token and
total), where the model's own time dominates.

    python bench/bench_chat.py [--replies 300] [--chunks 50] [--local]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from targets import stores
from tuneback.domain import ChatMessage
from tuneback.models import ModelAdapter, ModelOptions, ScriptedModel, Usage, resolve_model
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.storage import Store

QUESTION = "What is the capital of France?"


def direct(adapter: ModelAdapter) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    for item in adapter.stream([ChatMessage(role="user", content=QUESTION)], ModelOptions()):
        if not first and not isinstance(item, Usage):
            first = time.perf_counter()
    return first - started, time.perf_counter() - started


def through_service(chat: ChatService, conversation_id: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    message = chat.add_user_message(conversation_id, QUESTION)
    for _chunk in chat.reply(message.id):
        if not first:
            first = time.perf_counter()
    return first - started, time.perf_counter() - started


def measure(label: str, store: Store, make: Callable[[], ModelAdapter], replies: int) -> None:
    adapter = make()
    chat = ChatService(store, ModelCatalog([adapter]))
    # Each conversation keeps a short history, so windowing cost stays constant.
    rows: dict[str, list[tuple[float, float]]] = {"direct": [], "service": []}
    for n in range(replies):
        if n % 5 == 0:
            conversation = chat.start_conversation(project="bench", user="bench")
        rows["direct"].append(direct(adapter))
        rows["service"].append(through_service(chat, conversation.id))
    (d_first, d_total), (s_first, s_total) = (
        (statistics.median(r[0] for r in rows[k]), statistics.median(r[1] for r in rows[k]))
        for k in ("direct", "service")
    )
    print(
        f"{label:24} first token: direct {d_first * 1000:7.2f} ms, service {s_first * 1000:7.2f} ms"
        f" (+{(s_first - d_first) * 1000:5.2f})   whole reply: direct {d_total * 1000:7.2f} ms,"
        f" service {s_total * 1000:7.2f} ms (+{(s_total - d_total) * 1000:5.2f},"
        f" ×{s_total / d_total:4.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=50, help="chunks per scripted reply")
    parser.add_argument("--local", action="store_true", help="also time the embedded model")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    def scripted() -> ModelAdapter:
        model = ScriptedModel()
        for _ in range(2 * args.replies):
            model.enqueue(chunks=[f"w{i} " for i in range(args.chunks)])
        return model

    local = resolve_model("local") if args.local else None
    if local is not None:
        local.wait_until_loaded()
    for dialect, store in stores(args.postgres):
        measure(f"{dialect} scripted", store, scripted, args.replies)
        if local is not None:
            measure(f"{dialect} local", store, lambda: local, 5)


if __name__ == "__main__":
    main()
