"""Refuse request bodies over ``settings.max_body_bytes`` with 413, before they are read whole.

A pure ASGI middleware: it answers at once when ``Content-Length`` is too big,
and for chunked bodies counts bytes as they arrive and stops at the limit, so a
client cannot make the server buffer an arbitrarily large body.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(limit: int) -> str:
    return (
        f"the request body is larger than the server's limit of {limit} bytes "
        "(TUNEBACK_MAX_BODY_BYTES); send smaller batches"
    )


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the app, where the error handlers turn it
                    # into the one error shape.
                    raise HTTPException(413, too_large_message(self.limit))
            return message

        await self.app(scope, counted_receive, send)

    async def _refuse(self, send: Send) -> None:
        error = {"type": "payload_too_large", "message": too_large_message(self.limit)}
        body = json.dumps({"error": {**error, "details": None}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or []
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
