"""One wire shape for every error: ``{"error": {"type", "message", "details"}}``."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tuneback.domain.common import MAX_JSON_DEPTH
from tuneback.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    TuneBackError,
)
from tuneback.storage import DatabaseError, describe_database_error

log = logging.getLogger("tuneback.server")

_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class _AsciiJSONResponse(JSONResponse):
    # An error may quote what the client sent, and that can hold a lone
    # surrogate ("\ud800" in the request's JSON), which UTF-8 cannot encode:
    # escaped as ASCII it goes back exactly as it came.
    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(status: int, type_: str, message: str, details: Any = None) -> JSONResponse:
    return _AsciiJSONResponse(
        {"error": {"type": type_, "message": message, "details": details}}, status_code=status
    )


async def _tuneback_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TuneBackError)
    if isinstance(exc, AuthenticationError | PermissionDeniedError) and is_page_visit(request):
        return denied_page(request, exc)
    if isinstance(exc, NotFoundError) and is_page_visit(request):
        return not_found_page(request, exc.message)
    return error_response(exc.status_code, exc.type, exc.message, exc.details)


def is_page_visit(request: Request) -> bool:
    """A person opening a page in a browser, not a script or a program asking for JSON."""
    if request.method != "GET" or request.url.path.startswith(("/ui/", "/api/", "/v1/")):
        return False
    if request.query_params.get("format") == "json":
        return False
    return "text/html" in request.headers.get("accept", "")


def denied_page(request: Request, exc: TuneBackError) -> Response:
    """Send a stranger to the sign-in page; tell a signed-in person what their role lacks."""
    if isinstance(exc, AuthenticationError):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    from tuneback.server.web.templating import render_page

    return render_page(
        request, "denied.html", section="", status_code=exc.status_code, message=exc.message
    )


_PLACES = (
    # (path prefix, what is missing, where to go back to, the link's words)
    ("/runs/", "run", "/runs", "Back to the runs"),
    ("/datasets/", "dataset", "/datasets", "Back to the datasets"),
    ("/conversations/", "conversation", "/conversations", "Back to the conversations"),
    ("/users/", "user", "/users", "Back to the users"),
    ("/review/", "review queue", "/review", "Back to the review queues"),
)


def not_found_page(request: Request, detail: str | None = None) -> Response:
    """The styled 404 a person sees for an unknown page, run or dataset (JSON stays for APIs)."""
    from tuneback.server.web.templating import render_page

    path = request.url.path
    what, back_href, back_label = "page", "/", "Go to the start page"
    for prefix, thing, href, label in _PLACES:
        if path.startswith(prefix):
            what, back_href, back_label = thing, href, label
            break
    return render_page(
        request,
        "not_found.html",
        section="",
        status_code=404,
        what=what,
        detail=detail,
        back_href=back_href,
        back_label=back_label,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    unreadable = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if unreadable is not None:
        # A body that is not JSON at all is malformed, like one nested past the
        # parser: a 400 that says where, not a field-by-field 422.
        reason = unreadable.get("ctx", {}).get("error", "it cannot be parsed")
        at = unreadable["loc"][-1]
        return error_response(
            400,
            "bad_request",
            f"the body is not valid JSON: {reason} (at character {at})",
            {"at": at},
        )
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"]) or "request"
    return error_response(422, "validation_error", f"{where}: {first['msg']}", errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and is_page_visit(request):
        return not_found_page(request)
    type_ = _HTTP_TYPES.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, type_, str(exc.detail))
    # Keep what the raiser asked for, e.g. WWW-Authenticate on a 401.
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    """The methods the resource at this path answers, for the ``Allow`` of a 405.

    Each method of a path is its own route, and the router's 405 names only the
    methods of the first route whose path matched. The API's paths come from its
    OpenAPI document, where (as OpenAPI says) a path without parameters such as
    ``/feedback/tokens`` comes before a templated one that also matches it
    (``/feedback/{feedback_id}``); the pages' paths come from the router.
    """
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    path = request.url.path
    templated = (
        operations
        for template, operations in paths.items()
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path)
    )
    operations = paths.get(path) or next(templated, None)
    if operations is not None:
        return [method for method in HTTP_METHODS if method.lower() in operations]
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method, "path_params": {}})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # Reads outside the Store's own guard (queries, analytics, review) land
    # here: a database that went away is a 503 the client can retry, not a 500.
    assert isinstance(exc, DatabaseError)
    error = describe_database_error(exc, request.app.state.services.store.display_url)
    log.warning("%s %s: %s", request.method, request.url.path, error.message)
    return error_response(error.status_code, error.type, error.message, error.details)


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    # The depth rule (MAX_JSON_DEPTH) refuses deep JSON before anything recurses
    # over it; this is the backstop for a path that recursed first. Deep nesting
    # is the only input that exhausts the stack, so it is the client's mistake.
    assert isinstance(exc, RecursionError)
    log.warning("%s %s: input nested too deeply", request.method, request.url.path)
    return error_response(
        422,
        "validation_error",
        f"the request nests too deeply: JSON values may nest at most {MAX_JSON_DEPTH} levels",
        {"max_depth": MAX_JSON_DEPTH},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "tuneback hit an unexpected error; see the log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TuneBackError, _tuneback_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DatabaseError, _database_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unexpected_error)
