"""The API's routers: one per resource under ``/api/v1``, served on the app as they are."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from tuneback.server.api.schemas import error_responses

API_PREFIX = "/api/v1"

# Every operation can answer these, in the one error shape. (NUL in the URL is
# refused by each route's key guard: a dependency, or called by the route itself.)
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)


def resource_router(path: str, tag: str) -> APIRouter:
    """The router of one resource: its routes under ``/api/v1{path}``, documented with
    the errors every operation can answer."""
    return APIRouter(prefix=API_PREFIX + path, tags=[tag], responses=ERRORS)


def serve_routes(app: FastAPI, router: APIRouter) -> None:
    """Serve ``router``'s routes from the app's own route list, each as it was declared.

    A router's prefix, tags and responses are already part of each of its routes,
    so nothing is lost by not going through ``include_router``, which FastAPI
    resolves on every request: it matches an included router's routes once to
    pick the router and again inside it. Under load on ``POST /api/v1/feedback``
    that was about 8% of the event loop's time. Routers whose routes need the
    inclusion to add something (dependencies, a prefix) are included as usual.
    """
    app.router.routes.extend(router.routes)
