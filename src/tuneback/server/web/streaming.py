"""What the chat and compare pages share to stream answers as server-sent events."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from fastapi.responses import StreamingResponse


class Sampling(Protocol):
    """A request body that may set how the model samples."""

    temperature: float | None
    max_tokens: int | None


def sampling_options(body: Sampling) -> dict[str, Any]:
    """The model options a body sets; unset ones are left to the model's defaults."""
    options: dict[str, Any] = {}
    if body.temperature is not None:
        options["temperature"] = body.temperature
    if body.max_tokens is not None:
        options["max_tokens"] = body.max_tokens
    return options


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event: its name and its data as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    """Events as they come: never cached, never held back by a buffering proxy."""
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def close_quietly(chunks: Iterator[Any]) -> None:
    """Close an abandoned answer's generator, so the model stops and the run is recorded."""
    close = getattr(chunks, "close", None)
    if close is None:
        return
    # ValueError: still running in its thread; the cancel flag ends it at the next chunk.
    with contextlib.suppress(ValueError):
        close()
