"""The ceilings ``bench_http.py`` measures tuneback against: bare FastAPI apps.

    python bare.py PORT            # answers from the body alone
    python bare.py PORT DATABASE   # first commits the body to SQLite

Both have tuneback's two routes, taking the same bodies: ``POST /v1/chat/completions``
parses an OpenAI-shaped chat request with pydantic and answers an OpenAI-shaped
chat.completion echoing the last user message; ``POST /api/v1/feedback`` parses
tuneback's FeedbackCreate and answers 201. Both are ``async def`` routes, with no trip
to a thread pool: the fastest FastAPI can answer.

Given a DATABASE, every request's body is stored before the answer goes out, as a row
of one table (an id and the body's JSON) in a SQLite file in WAL mode. The bodies an
event loop's coroutines hand over while it runs its ready callbacks are inserted with
one ``executemany`` and committed right after them, in one transaction, as tuneback's
own SQLite writer commits them. This is the least a server can do that acknowledges
only after commit: what storing alone costs, with nothing else behind it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from tuneback.server.api.schemas import FeedbackCreate


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    stream: bool = False


class Committer:
    """Rows handed over during one turn of the event loop, committed together after it."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, body TEXT)")
        self.waiting: list[tuple[tuple[str, str], asyncio.Future[None]]] = []

    async def store(self, body: BaseModel) -> str:
        row_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not self.waiting:
            loop.call_soon(self.commit)
        self.waiting.append(((row_id, body.model_dump_json()), done))
        await done
        return row_id

    def commit(self) -> None:
        group, self.waiting = self.waiting, []
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT INTO requests VALUES (?, ?)", [row for row, _ in group])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            for _, done in group:
                done.set_exception(exc)
            return
        for _, done in group:
            done.set_result(None)


def bare_app(database: str | None = None) -> FastAPI:
    app = FastAPI()
    committer = Committer(database) if database else None
    # Without a database, nothing is awaited: the ceiling stays what FastAPI alone costs.

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest) -> dict[str, Any]:
        question = next((m.content for m in reversed(body.messages) if m.role == "user"), "")
        stored = (await committer.store(body)) if committer else uuid.uuid4().hex
        return {
            "id": f"chatcmpl-{stored}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": question},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }

    @app.post("/api/v1/feedback", status_code=201)
    async def feedback(body: FeedbackCreate) -> dict[str, str]:
        stored = (await committer.store(body)) if committer else uuid.uuid4().hex
        return {"id": stored, "run_id": body.run_id, "key": body.key}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    app = bare_app(sys.argv[2] if len(sys.argv) > 2 else None)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
