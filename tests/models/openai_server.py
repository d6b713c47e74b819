"""A small OpenAI-compatible server on loopback, scripted by each test.

It serves ``POST /v1/chat/completions`` (streamed as server-sent events, with a
final usage chunk when ``stream_options.include_usage`` is set, or as one JSON
body) and ``GET /v1/models``. A test sets :attr:`FakeOpenAIServer.behaviour` (the
reply, a failure status, a stall) and afterwards reads :attr:`requests` to see
exactly what the adapter sent, and :attr:`streams` to see whether a stream was
abandoned by the client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_ID = "fake-model"


@dataclass
class Behaviour:
    """What the server does with the next requests."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " server"])
    status: int = 200
    error_message: str = ""
    error_code: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering at all (to trip client timeouts)."""
    chunk_delay: float = 0.0
    """Seconds between streamed chunks (to cancel mid-stream)."""
    error_after: int | None = None
    """Chunks streamed before an ``{"error": ...}`` event ends the stream (None: no error)."""
    broken_line: str | None = None
    """Sent instead of that error event, as is (a server that speaks something else)."""
    prompt_tokens: int = 11
    completion_tokens: int = 4


@dataclass
class StreamRecord:
    """How one streamed answer went, seen from the server."""

    chunks_sent: int = 0
    finished: bool = False
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class ReceivedRequest:
    body: dict[str, Any]
    authorization: str | None
    client_port: int | None = None
    """The client's side of the connection: the same port for requests that reused one."""


class FakeOpenAIServer:
    """Runs the app with uvicorn in a daemon thread on a free 127.0.0.1 port."""

    def __init__(self, *, tls: tuple[str, str] | None = None) -> None:
        """``tls``: the paths of a key and its certificate, to serve HTTPS instead of HTTP."""
        self.tls = tls
        self.behaviour = Behaviour()
        self.requests: list[ReceivedRequest] = []
        self.streams: list[StreamRecord] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def root_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL an OpenAI client takes (with ``/v1``)."""
        return f"{self.root_url}/v1"

    def reset(self) -> None:
        self.behaviour = Behaviour()
        self.requests.clear()
        self.streams.clear()

    # -- the app ---------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "tests"}]}
        )

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        port = request.client.port if request.client else None
        self.requests.append(ReceivedRequest(body, request.headers.get("authorization"), port))
        behaviour = self.behaviour
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.status != 200:
            error = {
                "message": behaviour.error_message,
                "type": "invalid_request_error" if behaviour.status < 500 else "server_error",
                "code": behaviour.error_code,
            }
            return JSONResponse({"error": error}, status_code=behaviour.status)
        usage = {
            "prompt_tokens": behaviour.prompt_tokens,
            "completion_tokens": behaviour.completion_tokens,
            "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
        }
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(behaviour.chunks)}
            return JSONResponse(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", MODEL_ID),
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        record = StreamRecord()
        self.streams.append(record)
        return StreamingResponse(
            self._events(body, behaviour, record, usage if include_usage else None),
            media_type="text/event-stream",
        )

    async def _events(
        self,
        body: dict[str, Any],
        behaviour: Behaviour,
        record: StreamRecord,
        usage: dict[str, int] | None,
    ) -> AsyncIterator[str]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> str:
            payload = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", MODEL_ID),
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n"

        try:
            yield event([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])
            for sent, chunk in enumerate(behaviour.chunks):
                if sent == behaviour.error_after:
                    error = json.dumps({"error": {"message": behaviour.error_message}})
                    yield behaviour.broken_line or f"data: {error}\n\n"
                    return
                if behaviour.chunk_delay:
                    await asyncio.sleep(behaviour.chunk_delay)
                yield event([{"index": 0, "delta": {"content": chunk}, "finish_reason": None}])
                record.chunks_sent += 1
            yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if usage is not None:
                yield event([], usage=usage)
            yield "data: [DONE]\n\n"
            record.finished = True
        finally:
            record.ended.set()

    # -- running ---------------------------------------------------------------

    def start(self) -> None:
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_keyfile=self.tls[0] if self.tls else None,
            ssl_certfile=self.tls[1] if self.tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def unused_port() -> int:
    """A loopback port nothing listens on, for connection-refused tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
