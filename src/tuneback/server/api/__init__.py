"""The JSON API under ``/api/v1``: one router per resource, gathered here."""

from fastapi import APIRouter, Depends, Request

from tuneback.errors import ValidationError
from tuneback.server.api import (
    comparisons,
    configs,
    conversations,
    events,
    feedback,
    health,
    ingest,
    keys,
    runs,
    stats,
)


async def refuse_nul(request: Request) -> None:
    """NUL in a path or query would reach the database, where PostgreSQL refuses it.

    A coroutine only so that it runs in the event loop: a plain function would
    cost every API request a trip to the thread pool.
    """
    if "\x00" in request.url.path or "%00" in request.url.query:
        raise ValidationError("the URL may not contain NUL (%00) characters")


api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(refuse_nul)])
for _resource in (
    runs, feedback, configs, conversations, comparisons, events, ingest, keys, stats,
):  # fmt: skip
    api_router.include_router(_resource.router)

__all__ = ["api_router", "health"]
