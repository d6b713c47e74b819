"""The event log after an offset: follow every change by polling with the last ``seq`` seen."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tuneback.domain import dump_payload
from tuneback.server.access import key_rule
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import EventPublic, EventsPublic
from tuneback.server.auth import CallerDep
from tuneback.server.deps import ServicesDep

router = resource_router("/events", "events")


@router.get(
    "",
    summary="Events with a sequence number above `after`, oldest first",
    dependencies=[key_rule("manage")],
)
def list_events(
    caller: CallerDep,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    type: Annotated[list[str] | None, Query(description="Only these event types.")] = None,
) -> EventsPublic:
    events = services.store.events_after(after, limit, project=caller.scope, types=type)
    data = [
        EventPublic(
            seq=e.seq,
            id=e.id,
            type=e.type,
            version=e.version,
            project=e.project,
            recorded_at=e.recorded_at,
            payload=dump_payload(e.payload),
        )
        for e in events
    ]
    return EventsPublic(data=data, count=len(data), last_seq=data[-1].seq if data else after)
