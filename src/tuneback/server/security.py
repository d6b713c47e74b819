"""Keep other sites out: security headers, a Host allow-list, and no cross-site writes.

One pure ASGI middleware, :class:`SiteGuard`, does three things to every request:

* a request for a host that is not allowed (``TUNEBACK_ALLOWED_HOSTS``) gets 400,
  so a DNS-rebinding page cannot talk to a server on loopback through its own name;
* an unsafe request (POST, PUT, PATCH, DELETE) that the browser says comes from
  another site gets 403, so no page elsewhere can drive the chat or the review
  pages with the visitor's cookie; programs that send none of the browser's
  headers (curl, the SDK) pass, and so does the keyed API, which browsers cannot
  call across sites without a key;
* every answer carries headers that forbid framing and content sniffing, and a
  Content-Security-Policy that lets pages run only the server's own scripts.

:func:`public_url` is the one way to build an absolute URL the server hands out
(feedback links): it never trusts a Host header that the allow-list did not admit.
"""

from __future__ import annotations

import socket
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuneback.config import Settings
from tuneback.server.errors import error_response

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEALTH_PATH = "/healthz"
"""Answered for any host: load balancers and orchestrators probe it by address."""
KEYED_PREFIXES = ("/api/", "/v1/")
"""Called by programs with an API key; guarded against other sites only when auth is off."""

EMPTY_STYLE_HASH = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
"""The CSP hash of an empty ``<style>`` element."""

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Plotly adds an empty <style> and fills it through the CSSOM: an empty
        # element (this hash) is all it needs. The map styles its bundle also
        # injects are refused (the dashboard draws no maps); report-sample lets a
        # report say which style it was.
        f"style-src-elem 'self' '{EMPTY_STYLE_HASH}' 'report-sample'",
        # Bar widths and chart layout are set per element (style="--part: 40%",
        # plotly's SVG attributes); style attributes cannot run code.
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The pages' Content-Security-Policy: nothing but the server's own files, never framed."""

DOCS_POLICY = "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
"""FastAPI's /docs and /redoc load their viewer from a CDN with an inline script."""

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def machine_addresses() -> list[str]:
    """This machine's network addresses, as its own name resolves; empty when it does not."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


def host_name(host: str) -> str:
    """A Host header without its port, lower-cased: ``[::1]:8000`` → ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


Origin = tuple[str, str, int | None]


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of a URL, with the scheme's default port; None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname.rstrip("."), port or default


@dataclass(frozen=True)
class SitePolicy:
    """Which hosts the server answers to and which address it gives out, from the settings."""

    hosts: frozenset[str] | None
    """Allowed host names; None admits any host."""
    base_url: str | None
    own_url: str
    auth: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> SitePolicy:
        listens_everywhere = settings.host in ANY_ADDRESS
        own_host = "127.0.0.1" if listens_everywhere else settings.host
        if ":" in own_host:
            own_host = f"[{own_host}]"
        own_url = f"http://{own_host}:{settings.port}"
        if "*" in settings.allowed_hosts:
            hosts = None
        elif settings.allowed_hosts:
            hosts = frozenset(host_name(h) for h in settings.allowed_hosts)
        else:
            default = {*LOOPBACK_HOSTS, host_name(settings.host)}
            if listens_everywhere:
                default |= {socket.gethostname().lower(), *machine_addresses()}
            hosts = frozenset(default - set(ANY_ADDRESS))
        return cls(hosts=hosts, base_url=settings.base_url, own_url=own_url, auth=settings.auth)

    def admits(self, host: str) -> bool:
        return self.hosts is None or host_name(host) in self.hosts

    def guards(self, path: str) -> bool:
        """Whether an unsafe request to ``path`` must come from this site."""
        return not (self.auth and path.startswith(KEYED_PREFIXES))

    def base_for(self, scheme: str, host: str | None, root_path: str = "") -> str:
        """The base of the absolute URLs handed out in answer to a request."""
        if self.base_url is not None:
            return self.base_url
        if host and self.hosts is not None and self.admits(host):
            return f"{scheme}://{host}{root_path}"
        return f"{self.own_url}{root_path}"

    def comes_from_elsewhere(self, scope: Scope, headers: Headers) -> bool:
        """What the browser says about where an unsafe request comes from."""
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site == "cross-site":
            return True
        if fetch_site in ("same-origin", "none"):
            return False
        # same-site (another port on this host is the same site), or a browser
        # too old to say: the Origin, else the Referer, must be this server's.
        source = headers.get("origin") or headers.get("referer")
        if source is None:
            return fetch_site is not None
        ours = {origin_of(self.base_url)} if self.base_url else set()
        host = headers.get("host")
        if host:
            ours.add(origin_of(f"{scope['scheme']}://{host}"))
        return origin_of(source) not in ours - {None}


def public_url(request: Request, name: str, **path_params: str) -> str:
    """The absolute URL of route ``name``, built on TUNEBACK_BASE_URL or a trusted host."""
    policy: SitePolicy = request.app.state.site
    scope = request.scope  # not request.url: building the whole URL costs every answer
    base = policy.base_for(
        scope.get("scheme", "http"), request.headers.get("host"), scope.get("root_path", "")
    )
    return base + _route_path(request.app, name, path_params)


_PATHS: weakref.WeakKeyDictionary[FastAPI, dict[tuple[str, ...], str]] = weakref.WeakKeyDictionary()


def _route_path(app: FastAPI, name: str, params: dict[str, str]) -> str:
    # Finding a route by name walks the whole route table, and the proxy asks for
    # one with every answer: each (route, parameters) is looked up once, as a
    # template whose placeholders are then filled in, as url_path_for fills them.
    key = (name, *sorted(params))
    paths = _PATHS.setdefault(app, {})
    template = paths.get(key)
    if template is None:
        placeholders = {param: f"\x00{param}\x00" for param in params}
        template = paths[key] = str(app.url_path_for(name, **placeholders))
    for param, value in params.items():
        template = template.replace(f"\x00{param}\x00", value)
    return template


def _raw_headers(csp: str) -> list[tuple[bytes, bytes]]:
    pairs = {**SECURITY_HEADERS, "content-security-policy": csp}
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs.items()]


class SiteGuard:
    """The pure ASGI middleware; ``docs_paths`` get a policy their CDN viewer can live with."""

    def __init__(
        self, app: ASGIApp, *, policy: SitePolicy, docs_paths: tuple[str | None, ...]
    ) -> None:
        self.app = app
        self.policy = policy
        self.docs_paths = frozenset(p for p in docs_paths if p)
        # Encoded once: every response gets them (those it does not set itself).
        self._headers = {csp: _raw_headers(csp) for csp in (PAGE_POLICY, DOCS_POLICY)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        added = self._headers[DOCS_POLICY if path in self.docs_paths else PAGE_POLICY]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [pair for pair in added if pair[0] not in present]
                message["headers"] = headers
            await send(message)

        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None and path != HEALTH_PATH and not self.policy.admits(host):
            refusal = error_response(
                400,
                "host_not_allowed",
                f"this server does not answer to host {host_name(host)!r}: add it to "
                "TUNEBACK_ALLOWED_HOSTS (comma-separated, * admits any host)",
                {"host": host_name(host)},
            )
            await refusal(scope, receive, send_with_headers)
            return
        method: str = scope["method"]
        if (
            method in UNSAFE_METHODS
            and self.policy.guards(path)
            and self.policy.comes_from_elsewhere(scope, headers)
        ):
            refusal = error_response(
                403,
                "cross_site_request",
                f"{method} {path} was refused: it came from another site, and only "
                "tuneback's own pages may send it",
                {"origin": headers.get("origin"), "sec_fetch_site": headers.get("sec-fetch-site")},
            )
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
