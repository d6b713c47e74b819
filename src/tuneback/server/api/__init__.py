"""The JSON API under ``/api/v1``: one router per resource, gathered here."""

from fastapi import FastAPI

from tuneback.server.api import (
    comparisons,
    configs,
    conversations,
    datasets,
    events,
    feedback,
    health,
    ingest,
    keys,
    runs,
    stats,
)
from tuneback.server.api.routes import serve_routes

RESOURCES = (
    runs, feedback, configs, conversations, comparisons, datasets, events, ingest, keys, stats,
)  # fmt: skip
"""One router each; its routes are matched in this order."""


def include_api(app: FastAPI) -> None:
    """Serve the API: every resource's routes on the app itself, under ``/api/v1``."""
    for resource in RESOURCES:
        serve_routes(app, resource.router)


__all__ = ["health", "include_api"]
