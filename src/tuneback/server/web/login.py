"""Signing in and out of the pages, and joining a chat by invitation.

Signing in is a form, a session cookie, and back where you were; an invitation
link shows a page whose button gives this browser its pass to the chat.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tuneback.errors import RateLimitedError
from tuneback.server.access import (
    PASS_COOKIE,
    SESSION_COOKIE,
    browser_name,
    browser_token,
    invitations,
    local_owner_mode,
    page_principal,
    rule,
)
from tuneback.server.deps import services_of
from tuneback.server.web.templating import render_page
from tuneback.services.invitations import PASS_TTL
from tuneback.services.keys import TokenError

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path on this site: a login link must not send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@router.get("/login", dependencies=[rule("public")])
async def login_page(request: Request, next: str | None = None) -> Response:
    principal = await page_principal(request)
    return render_page(
        request,
        "login.html",
        section="",
        next=safe_next(next),
        signed_in=principal if principal.signed_in else None,
        local=await local_owner_mode(request),
        error=None,
    )


@router.post("/login", dependencies=[rule("public")])
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    services = services_of(request)
    source = request.client.host if request.client else None
    try:
        token = await run_in_threadpool(services.accounts.sign_in, name, password, source=source)
    except RateLimitedError as exc:
        refused = _login_again(request, next, name, exc.message, exc.status_code)
        refused.headers["retry-after"] = str(exc.retry_after)
        return refused
    if token is None:
        return _login_again(
            request, next, name, "That name and password do not match an active account.", 401
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(services.accounts.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _login_again(
    request: Request, next: str | None, name: str, error: str, status: int
) -> Response:
    return render_page(
        request,
        "login.html",
        section="",
        status_code=status,
        next=safe_next(next),
        signed_in=None,
        local=False,
        error=error,
        name=name,
    )


@router.post("/logout", dependencies=[rule("public")])
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(services_of(request).accounts.sign_out, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    return response


@router.get("/join/{token}", dependencies=[rule("public")])
async def join_page(request: Request, token: str) -> Response:
    """What an invitation link opens: a button, so a link previewer joins nobody."""
    try:
        invitation = invitations(request).check(token)
    except TokenError as exc:
        return render_page(
            request, "join.html", section="", status_code=404, invitation=None, problem=str(exc)
        )
    return render_page(request, "join.html", section="", invitation=invitation, problem=None)


@router.post("/join/{token}", dependencies=[rule("public")])
async def join(request: Request, token: str) -> Response:
    browser = browser_name(browser_token(request))
    try:
        chit, _ = invitations(request).admit(token, browser)
    except TokenError as exc:
        return render_page(
            request, "join.html", section="", status_code=404, invitation=None, problem=str(exc)
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        PASS_COOKIE,
        chit,
        max_age=int(PASS_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response
