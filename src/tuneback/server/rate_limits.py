"""Rate limits on writes: so many per API key, or per client address when no valid key is sent.

One pure ASGI middleware, :class:`WriteRateLimit`, sees every request first (after
the site guard) and counts only the unsafe ones (POST, PUT, PATCH, DELETE): the
API's writes, the OpenAI-compatible proxy, the pages' actions, feedback links.
Reads are never counted. A request over the limit gets 429 with ``Retry-After``
and the one error shape, before it reaches a route.

The counting is the ``limits`` library's sliding window counter in this
process's memory: cheap (two counters per caller and window, no lock held across
an await) and close to exact. Each server process counts on its own, so with
``--workers N`` a caller may make up to N times the limit in all.

Who is counted: a key this process has checked in the last seconds is counted by
its id, without a database read; a key not seen yet is checked here (the
authentication that follows finds it in the cache); a missing, unknown or
revoked key is counted against the client's address, so guessing keys is
limited too. Addresses in ``TUNEBACK_RATE_LIMIT_EXEMPT`` (loopback by default)
are never counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from ipaddress import ip_address, ip_network

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tuneback.errors import RateLimitedError
from tuneback.server.auth import presented_key
from tuneback.server.errors import error_response
from tuneback.server.security import UNSAFE_METHODS
from tuneback.services.keys import KeyService


class WriteRateLimit:
    """Counts unsafe requests per API key or client address; refuses those over ``rule``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rule: str,
        exempt: Sequence[str],
        keys: KeyService,
        keyed: bool,
    ) -> None:
        self.app = app
        self.items: list[RateLimitItem] = parse_many(rule)
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.keys = keys
        self.keyed = keyed
        networks = [ip_network(entry, strict=False) for entry in exempt]
        # Single addresses are looked up as the text the server reports: no parsing
        # on the hot path for loopback, the common case.
        self.exempt_hosts = frozenset(
            str(n.network_address) for n in networks if n.num_addresses == 1
        )
        self.exempt_networks = [n for n in networks if n.num_addresses > 1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = client[0] if client else ""
        if self._exempt(host):
            await self.app(scope, receive, send)
            return
        who = await self._caller(scope, host)
        for item in self.items:
            if not await self.limiter.hit(item, who):
                refusal = await self._refusal(item, who)
                response = error_response(
                    refusal.status_code, refusal.type, refusal.message, refusal.details
                )
                response.headers["retry-after"] = str(refusal.retry_after)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _exempt(self, host: str) -> bool:
        if host in self.exempt_hosts:
            return True
        if not self.exempt_networks:
            return False
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.exempt_networks)

    async def _caller(self, scope: Scope, host: str) -> str:
        if self.keyed:
            key = presented_key(Request(scope))
            if key is not None:
                record = self.keys.cached(key) or await run_in_threadpool(self.keys.verify, key)
                if record is not None:
                    return f"key:{record.id}"
        return f"address:{host}"

    async def _refusal(self, item: RateLimitItem, who: str) -> RateLimitedError:
        stats = await self.limiter.get_window_stats(item, who)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        per = "API key" if who.startswith("key:") else "client address"
        return RateLimitedError(
            f"too many writes: at most {item} per {per} (TUNEBACK_RATE_LIMIT); "
            f"try again in {retry_after} s",
            retry_after=retry_after,
            details={"limit": str(item), "per": per, "retry_after": retry_after},
        )
