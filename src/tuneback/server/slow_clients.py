"""Bounds on slow and idle HTTP clients, passed to uvicorn by ``tuneback serve``.

uvicorn (0.54, with httptools or h11) times a connection out only between
requests: its keep-alive timer starts when a response is complete and stops at
the first byte of the next request. A client that connects and sends nothing,
or sends its request headers a byte at a time (slowloris), is never closed, and
each one holds a socket and counts against ``limit_concurrency``. So the server
runs ``HeaderTimeoutProtocol``: uvicorn's httptools protocol plus one timer
that closes a connection whose request headers have not all arrived within
``header_timeout`` seconds of it opening, or of the request's first byte.
Request bodies and responses are not timed here: they reach the application,
which streams them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

KEEP_ALIVE_SECONDS = 5
HEADER_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 1000
GRACEFUL_SHUTDOWN_SECONDS = 10
MAX_INCOMPLETE_EVENT_BYTES = 64 * 1024


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that closes connections slow to send their headers."""

    def __init__(
        self, *args: Any, header_timeout: float = HEADER_TIMEOUT_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()


@dataclass(frozen=True)
class ServerLimits:
    """How long and how many: what ``tuneback serve`` gives uvicorn, with or without workers."""

    keep_alive: int = KEEP_ALIVE_SECONDS
    header_timeout: float = HEADER_TIMEOUT_SECONDS
    max_connections: int = MAX_CONNECTIONS

    def uvicorn_options(self) -> dict[str, Any]:
        # A partial of a module-level class pickles, so --workers' processes get it too.
        protocol = partial(HeaderTimeoutProtocol, header_timeout=self.header_timeout)
        return {
            "http": protocol,
            "timeout_keep_alive": self.keep_alive,
            # Beyond this many open connections (or requests in progress), uvicorn
            # answers 503 at once instead of queueing.
            "limit_concurrency": self.max_connections,
            "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
            # Used only if uvicorn runs h11 instead of httptools.
            "h11_max_incomplete_event_size": MAX_INCOMPLETE_EVENT_BYTES,
        }


class DrainingServer(uvicorn.Server):
    """uvicorn's server that, told to stop, first awaits ``before_stopping`` while it
    still listens: an app inside it that sends its writes back over HTTP (a mounted
    Gradio app) gets them in, and ends its endless streams, before the doors close."""

    def __init__(
        self,
        config: uvicorn.Config,
        before_stopping: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        super().__init__(config)
        self.before_stopping = before_stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.before_stopping is not None:
            await self.before_stopping()
        await super().shutdown(sockets)
