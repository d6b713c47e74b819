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


def refuse_nul(request: Request) -> None:
    """NUL in a path or query would reach the database, where PostgreSQL refuses it."""
    if "\x00" in request.url.path or "%00" in request.url.query:
        raise ValidationError("the URL may not contain NUL (%00) characters")


api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(refuse_nul)])
for _resource in (
    runs, feedback, configs, conversations, comparisons, events, ingest, keys, stats,
):  # fmt: skip
    api_router.include_router(_resource.router)

__all__ = ["api_router", "health"]
