"""Who is asking, and may they: the one guard in front of every route.

Every route declares its rule with :func:`rule` (a permission from
:mod:`tuneback.domain.access`, or ``public``); a test walks the app's route table
and fails on a route without one. The principal of a request is, in order:

1. the account of a live sign-in session (cookie ``tuneback_session``);
2. the **local owner**, while no account exists and the server listens only on
   loopback: trying tuneback on one's own machine asks for nothing;
3. else a **browser**: an unguessable random identity kept in an HTTP-only cookie
   (``tuneback_browser``) that only that browser holds. It may chat (when the
   project's chat is ``open``) and rate its own answers; nothing else.

API routes take their principal from the API key instead (see :mod:`.auth`).

Every state-changing page request carries a CSRF token: an HMAC of the browser's
cookie under a server secret, sent as the ``X-CSRF-Token`` header (the pages'
scripts) or a ``csrf_token`` form field, so another site can neither read nor
forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuneback.domain.access import SIGN_IN_HINT, Permission, Principal
from tuneback.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from tuneback.server.security import UNSAFE_METHODS
from tuneback.services.invitations import Invitations

Rule = Permission | Literal["public"]
T = TypeVar("T")

SESSION_COOKIE = "tuneback_session"
PASS_COOKIE = "tuneback_pass"
"""A browser's pass into a chat that is by invitation (see services.invitations)."""
BROWSER_COOKIE = "tuneback_browser"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
ONE_YEAR = 365 * 24 * 3600
LOCAL_OWNER = "owner"
"""The name the local owner's reviews and ratings carry."""
UNTRACKED_PREFIXES = ("/api/", "/v1/", "/static/", "/healthz")
"""Paths no browser identity is needed for: programs and files."""


class BrowserIdentity:
    """Give every browser that opens a page a random identity cookie, once.

    Pure ASGI, so the keyed API and the proxy pay nothing for it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNTRACKED_PREFIXES):
            await self.app(scope, receive, send)
            return
        token = _cookie(scope, BROWSER_COOKIE)
        if token is not None and 20 <= len(token) <= 64:
            scope.setdefault("state", {})["browser"] = token
            await self.app(scope, receive, send)
            return
        token = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["browser"] = token
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{BROWSER_COOKIE}={token}; Max-Age={ONE_YEAR}; Path=/; HttpOnly; SameSite=Lax{secure}"
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            return cookie_parser(value.decode("latin-1")).get(name)
    return None


def browser_token(request: Request) -> str:
    token: str | None = getattr(request.state, "browser", None)
    if token is None:
        raise AuthenticationError("no browser identity: open the page first")
    return token


def browser_name(token: str) -> str:
    """The name a browser's conversations and ratings carry; it reveals nothing of the token."""
    return "guest-" + hashlib.sha256(f"browser.{token}".encode()).hexdigest()[:12]


def listens_on_loopback(host: str) -> bool:
    """Whether only this machine can connect to a server listening on ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def page_principal(request: Request) -> Principal:
    """Who opened this page (see the module docstring for the order)."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is not None:
        return found
    services = request.app.state.services
    accounts = services.accounts
    token = request.cookies.get(SESSION_COOKIE)
    principal: Principal | None = None
    if token:
        account = await _off_loop(accounts.session, token)
        if account is not None:
            principal = Principal(
                name=account.name,
                role=account.role,
                kind="account",
                projects=frozenset(account.projects) or None,
            )
    if principal is None:
        browser = browser_name(browser_token(request))
        if await local_owner_mode(request):
            principal = Principal(name=LOCAL_OWNER, role="owner", kind="local", chat_name=browser)
        else:
            principal = Principal(name=browser, role=None, kind="browser")
    request.state.principal = principal
    return principal


async def local_owner_mode(request: Request) -> bool:
    """No account yet and nobody but this machine can connect: no sign-in needed."""
    services = request.app.state.services
    if not listens_on_loopback(services.settings.host):
        return False
    return not await _off_loop(services.accounts.any_account)


async def _off_loop(call: Callable[..., T], *args: Any) -> T:
    # The account service answers from its cache most of the time; only a miss
    # reads the database, and that read must not block the event loop.
    return await run_in_threadpool(call, *args)


def csrf_token(request: Request) -> str:
    """The token this browser's state-changing requests must carry."""
    secret = request.app.state.services.csrf_secret()
    mac = hmac.new(secret, f"csrf.{browser_token(request)}".encode(), hashlib.sha256)
    return mac.hexdigest()


async def check_csrf(request: Request) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent, csrf_token(request)):
        raise PermissionDeniedError(
            "the form is stale or came from another site (no valid CSRF token): "
            "reload the page and try again"
        )


class Require:
    """The guard of one page route: identify the caller, check CSRF, apply the rule."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    async def __call__(self, request: Request) -> Principal | None:
        if self.rule == "public":
            if request.method in UNSAFE_METHODS:
                await check_csrf(request)
            return None
        principal = await page_principal(request)
        if request.method in UNSAFE_METHODS:
            await check_csrf(request)
        services = request.app.state.services
        project = services.settings.project
        if self.rule == "chat" and principal.kind == "browser":
            await _check_chat_access(request, principal, project)
        return principal.require(self.rule, project)


async def _check_chat_access(request: Request, principal: Principal, project: str) -> None:
    """A browser without an account reaches the chat as the project's setting allows."""
    services = request.app.state.services
    # The project's rules are cached for a second: no database read per chat request.
    access = (await _off_loop(services.store.project_rules, project))[0].chat_access
    if access == "accounts":
        raise AuthenticationError(
            "this chat is for signed-in accounts: sign in at /login "
            "(an owner adds accounts with: tuneback users add NAME --role user)"
        )
    if access == "link":
        chit = request.cookies.get(PASS_COOKIE)
        if not invitations(request).admitted(chit, principal.name, project):
            raise AuthenticationError(
                "this chat is by invitation: open the link you were given "
                "(an owner makes one with: tuneback users invite)"
            )


def invitations(request: Request) -> Invitations:
    return Invitations(request.app.state.api.keys)


class RequireKey:
    """The guard of one API route: the URL holds no NUL, and the key's role grants the rule.

    The API's only dependency besides the route's own: each one FastAPI solves
    costs every request, and these routes are the write path.
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    async def __call__(self, request: Request) -> Principal | None:
        from tuneback.server.auth import authenticate
        from tuneback.server.deps import refuse_nul

        await refuse_nul(request)
        if self.rule == "public":
            return None
        caller = await authenticate(request)
        return caller.principal.require(self.rule)


def who(request: Request) -> Principal:
    """The principal the route's guard found: the name reviews and ratings go under."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None:  # pragma: no cover - a route without a guard is a test failure
        raise AuthenticationError(f"this needs an account: {SIGN_IN_HINT}")
    return found


PrincipalDep = Annotated[Principal, Depends(page_principal)]
"""The principal of a page request (already found by the route's guard)."""


def in_this_project(request: Request, project: str, what: str, object_id: str) -> None:
    """The pages show the server's project: an object of another one does not exist here."""
    principal: Principal | None = getattr(request.state, "principal", None)
    here = request.app.state.services.settings.project
    if project != here or (principal is not None and not principal.sees(project)):
        raise NotFoundError(f"no {what} with id {object_id}")


F = TypeVar("F", bound=Callable[..., Any])


def checks_itself(permission: Rule) -> Callable[[F], F]:
    """Mark a route that applies ``permission`` in its own body (the proxy answers in
    OpenAI's error shape); the route-table test reads the mark and tests the behaviour."""

    def mark(endpoint: F) -> F:
        endpoint.__access_rule__ = permission  # type: ignore[attr-defined]
        return endpoint

    return mark


def rule_of(endpoint: Any, dependencies: list[Any]) -> Rule | None:
    """The rule a route declares, from its guard dependency or its own mark."""
    for dependency in dependencies:
        if isinstance(dependency, Require | RequireKey):
            return dependency.rule
    found: Rule | None = getattr(endpoint, "__access_rule__", None)
    return found


def rule(permission: Rule) -> Any:
    """``dependencies=[rule("read")]`` on a page route: who may call it."""
    return Depends(Require(permission))


def key_rule(permission: Rule) -> Any:
    """``dependencies=[key_rule("log")]`` on an API route: which key roles may call it."""
    return Depends(RequireKey(permission))


def declare_key_security(app: FastAPI) -> None:
    """The OpenAPI document names the key schemes on every operation a key rule guards.

    The key is read by the guard itself rather than by FastAPI's security
    dependencies, so the document learns it here, from the same rules.
    """
    from tuneback.server.auth import KEY_SECURITY, SECURITY_SCHEMES

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        paths = schema.get("paths", {})
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            guard = rule_of(route.endpoint, [d.dependency for d in route.dependencies])
            if guard is None or guard == "public" or route.path not in paths:
                continue
            for method in route.original_route.methods or ():
                operation = paths[route.path].get(method.lower())
                if operation is not None:
                    operation["security"] = KEY_SECURITY
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
