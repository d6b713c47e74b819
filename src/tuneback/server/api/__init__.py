"""The JSON API under ``/api/v1``: one router per resource, gathered here."""

from fastapi import APIRouter

from tuneback.server.api import health

api_router = APIRouter(prefix="/api/v1")

__all__ = ["api_router", "health"]
