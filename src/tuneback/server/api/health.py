"""Liveness: is the server up and does the database answer?"""

from __future__ import annotations

import os

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tuneback.__about__ import __version__
from tuneback.server.access import key_rule
from tuneback.server.deps import ServicesDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    database: str
    process: int = Field(description="The server process that answered (one of --workers N).")


@router.get(
    "/healthz",
    summary="Is the server up and the database reachable?",
    dependencies=[key_rule("public")],
)
def healthz(services: ServicesDep) -> Health:
    services.store.ping()
    return Health(
        status="ok", version=__version__, database=services.store.dialect, process=os.getpid()
    )
