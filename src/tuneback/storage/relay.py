"""What a stream relay keeps in the database: its position, its lease, and an imported log.

A relay (:mod:`tuneback.stream`) copies the event log to another system. Because
``seq`` is gapless and in commit order, the log itself is the outbox: the relay
needs only the last ``seq`` it saw acknowledged, kept here per relay name.

Only one relay of a name should publish at a time: its lease is a
:class:`~tuneback.storage.engine.NamedLock`, released the moment the holding
process dies or loses its connection, so another worker takes over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Text, cast, func, select, update

from tuneback.domain import StoredEvent, encode_payload, utcnow
from tuneback.errors import ConflictError
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.engine import WRITE_OPTION, Dialect, EncodedJson, NamedLock

IMPORT_PAGE = 1_000

RelayLease = NamedLock
"""The right to be the one relay of a name; ``holds()`` says if it still is."""


@dataclass(frozen=True)
class LogEntry:
    """An event as stored, its payload left as the JSON text the log holds.

    A relay copies events without reading their payloads: parsing and
    encoding them again would cost more than publishing them.
    """

    seq: int
    id: str
    type: str
    version: int
    project: str
    recorded_at: datetime
    payload_json: str


def read_log(conn: Connection, after: int, limit: int) -> list[LogEntry]:
    c = t.events.c
    query = (
        select(c.seq, c.id, c.type, c.version, c.project, c.recorded_at)
        .add_columns(cast(c.payload, Text).label("payload_json"))
        .where(c.seq > after)
        .order_by(c.seq)
        .limit(limit)
    )
    return [LogEntry(*row) for row in conn.execute(query)]


@dataclass(frozen=True)
class RelayPosition:
    """How far one relay has published: the last ``seq`` its stream acknowledged."""

    name: str
    seq: int
    updated_at: datetime


def read_position(conn: Connection, name: str) -> int:
    value = conn.execute(
        select(t.relay_positions.c.seq).where(t.relay_positions.c.name == name)
    ).scalar()
    return int(value or 0)


def read_positions(conn: Connection) -> list[RelayPosition]:
    rows = conn.execute(select(t.relay_positions).order_by(t.relay_positions.c.name))
    return [RelayPosition(row.name, int(row.seq), row.updated_at) for row in rows]


def write_position(engine: Engine, name: str, seq: int, *, backwards: bool = False) -> None:
    """Store ``seq`` as the relay's position; it only moves forward unless ``backwards``."""
    c = t.relay_positions.c
    now = utcnow()
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            query = update(t.relay_positions).where(c.name == name)
            if not backwards:
                # Two relays overlapping for a moment (a lease changing hands)
                # must not move the position back.
                query = query.where(c.seq < seq)
            changed = conn.execute(query.values(seq=seq, updated_at=now)).rowcount
            if changed == 0 and conn.execute(select(c.seq).where(c.name == name)).first() is None:
                conn.execute(t.relay_positions.insert().values(name=name, seq=seq, updated_at=now))


def import_events(
    engine: Engine, inserts: BulkInserts, events: Sequence[StoredEvent | LogEntry]
) -> int:
    """Append events exactly as another store numbered them; returns the new last ``seq``.

    They must continue this log without a gap (the first is ``last seq + 1``).
    """
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            Dialect.of(conn).lock_whole_log(conn)
            last = int(
                conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0))).scalar_one()
            )
            for n, event in enumerate(events):
                if event.seq != last + 1 + n:
                    raise ConflictError(
                        f"cannot import event {event.id} at seq {event.seq}: "
                        f"the log continues at {last + 1 + n}",
                        details={"expected": last + 1 + n, "got": event.seq},
                    )
            for start in range(0, len(events), IMPORT_PAGE):
                page = events[start : start + IMPORT_PAGE]
                inserts(conn, t.events, [_row(e) for e in page])
            return last + len(events)


def _row(event: StoredEvent | LogEntry) -> dict[str, Any]:
    # A copied entry keeps the text its source stored.
    payload = event.payload_json if isinstance(event, LogEntry) else encode_payload(event.payload)
    return {
        "seq": event.seq,
        "id": event.id,
        "type": event.type,
        "version": event.version,
        "project": event.project,
        "recorded_at": event.recorded_at,
        "payload": EncodedJson(payload),
    }


def take_lease(engine: Engine, name: str) -> RelayLease | None:
    """The relay lease of ``name`` if nobody else holds it, else None."""
    return Dialect.of(engine).take_named_lock(engine, f"/relay/{name}")
