"""Who is chatting: a name from ``?user=`` or the name field, kept in a cookie.

There are no accounts on the chat page: the person who shares it decides who
gets the URL. The name scopes the conversation list and is carried by every
piece of feedback, so it must be stable across visits.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request, Response

COOKIE = "tuneback_user"
_ALLOWED = re.compile(r"[^A-Za-z0-9 _.@\-]")
ONE_YEAR = 365 * 24 * 3600


def clean_name(raw: str) -> str:
    return _ALLOWED.sub("", raw).strip()[:64]


def current_user(request: Request) -> str | None:
    """The name from the query string (which wins) or the cookie."""
    for raw in (request.query_params.get("user"), request.cookies.get(COOKIE)):
        if raw and clean_name(raw):
            return clean_name(raw)
    return None


def guest_name() -> str:
    return f"guest-{secrets.token_hex(3)}"


def remember(response: Response, user: str) -> None:
    response.set_cookie(COOKIE, user, max_age=ONE_YEAR, samesite="lax", httponly=False)
