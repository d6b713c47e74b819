"""The chat page and the endpoints its script calls."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
