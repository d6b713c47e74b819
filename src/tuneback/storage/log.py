"""The event log: appending (through the group writer), following, replaying and copying.

Every write appends events; the writer thread (:mod:`tuneback.storage.writer`)
commits whatever is waiting in one transaction and :mod:`tuneback.storage.commit`
says what a commit does. The log stays gapless and in commit order, so a
follower reading ``seq > n`` never misses an event, and :meth:`EventLog.rebuild`
replays it into projections that match what the writes made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, select

from tuneback.domain import (
    EventForgotten,
    EventPayload,
    StoredEvent,
    encode_payload,
    new_id,
)
from tuneback.errors import TuneBackError, ValidationError
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.commit import GroupCommit, PreparedEvent
from tuneback.storage.engine import Database
from tuneback.storage.projections import Projector
from tuneback.storage.relay import (
    LogEntry,
    RelayLease,
    RelayPosition,
    import_events,
    read_log,
    read_position,
    read_positions,
    take_lease,
    write_position,
)
from tuneback.storage.rows import event_from_row
from tuneback.storage.writer import GATHER_WAIT, GroupWriter

REBUILD_PAGE = 2_000


@dataclass(frozen=True)
class NewEvent:
    """A payload to append, with the id that makes retrying it safe (made up if absent).

    Appending an id that is already stored is a no-op when the new payload says
    the same thing, and a :class:`ConflictError` when it says something else
    (another kind of event, another project, other content): the rule is checked
    inside the write, in :mod:`tuneback.storage.commit`, for every way in.
    ``ensure`` keeps whatever is stored under the id if it is the same kind of
    thing in the same project (a conversation restated on every turn);
    ``once`` refuses feedback from a rater who already holds a current rating on
    the key, checked inside the write so two at once cannot both pass.
    """

    payload: EventPayload
    id: str | None = None
    ensure: bool = False
    once: bool = False


def log_pages(conn: Connection, page: int = REBUILD_PAGE) -> Iterator[list[StoredEvent]]:
    """The whole log in order, ``page`` events at a time: what a rebuild replays."""
    after = 0
    while True:
        rows = conn.execute(
            select(t.events).where(t.events.c.seq > after).order_by(t.events.c.seq).limit(page)
        ).all()
        if not rows:
            return
        yield [event_from_row(row) for row in rows]
        after = rows[-1].seq


def prepare(events: Iterable[EventPayload | NewEvent]) -> list[PreparedEvent]:
    """Fix each event's id and encode its payload before the write, refusing what cannot be."""
    prepared: list[PreparedEvent] = []
    for event in events:
        wanted = event if isinstance(event, NewEvent) else NewEvent(event)
        if not isinstance(wanted.payload, EventPayload):
            raise ValidationError(
                f"cannot append {type(wanted.payload).__name__}: not an event payload"
            )
        if isinstance(wanted.payload, EventForgotten):
            raise ValidationError(
                "cannot append event.forgotten: tombstones are written only by "
                "forgetting a user (tuneback users forget)"
            )
        prepared.append(
            PreparedEvent(
                # Fixed before the write, so a write retried after a lost
                # connection finds its own event instead of adding another.
                id=wanted.id or new_id(),
                payload=wanted.payload,
                encoded=encode_payload(wanted.payload),
                given=wanted.id is not None,
                ensure=wanted.ensure,
                once=wanted.once,
            )
        )
    return prepared


class EventLog:
    """Appends go through one writer thread; reads of the log take their own connections.

    ``committed`` is called on the writer thread with the events of each commit;
    ``reset`` when :meth:`rebuild` empties the projections.
    """

    def __init__(
        self,
        database: Database,
        *,
        committed: Callable[[list[StoredEvent]], None],
        reset: Callable[[], None],
    ) -> None:
        self._database = database
        self._reset = reset
        self._known_projects: set[str] = set()
        # The inline commit notes projects of its own: each set is filled only by
        # transactions on its own thread, and emptied when one of them rolls back.
        self._known_inline: set[str] = set()
        self._inserts = BulkInserts(database.engine.dialect)

        def commit(engine: Engine, known: set[str]) -> GroupCommit:
            return GroupCommit(
                engine,
                self._inserts,
                known,
                committed=committed,
                describe=lambda: database.display_url,
            )

        inline = database.inline_engine
        self._writer = GroupWriter(
            commit(database.engine, self._known_projects),
            inline=None if inline is None else commit(inline, self._known_inline),
            checkpoint=None if inline is None else database.checkpoint,
            gather=GATHER_WAIT if database.dialect.postgres else 0.0,
        )

    def close(self) -> None:
        """Finish the writes already queued; later appends are refused."""
        self._writer.close()

    # -- appending ------------------------------------------------------------------

    def append_many(self, events: Iterable[EventPayload | NewEvent]) -> list[StoredEvent]:
        prepared = prepare(events)
        if not prepared:
            return []
        return self._writer.submit(prepared).result()

    async def append_many_async(
        self, events: Iterable[EventPayload | NewEvent]
    ) -> list[StoredEvent]:
        prepared = prepare(events)
        if not prepared:
            return []
        return await self._writer.submit_async(prepared)

    def append_each(
        self, events: Sequence[EventPayload | NewEvent]
    ) -> list[StoredEvent | TuneBackError]:
        prepared: list[list[PreparedEvent] | TuneBackError] = []
        for event in events:
            try:
                prepared.append(prepare([event]))
            except TuneBackError as exc:  # refused before the write, and alone
                prepared.append(exc)
        futures = iter(
            self._writer.submit_each([p for p in prepared if not isinstance(p, TuneBackError)])
        )
        results: list[StoredEvent | TuneBackError] = []
        for request in prepared:
            if isinstance(request, TuneBackError):
                results.append(request)
                continue
            try:
                results.append(next(futures).result()[0])
            except TuneBackError as exc:
                results.append(exc)
        return results

    # -- following ------------------------------------------------------------------

    def events_after(
        self,
        seq: int = 0,
        limit: int = 1_000,
        *,
        project: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        query = select(t.events).where(t.events.c.seq > seq).order_by(t.events.c.seq).limit(limit)
        if project is not None:
            query = query.where(t.events.c.project == project)
        if types:
            query = query.where(t.events.c.type.in_(list(types)))
        with self._database.reading() as conn:
            return [event_from_row(row) for row in conn.execute(query)]

    def get_event(self, event_id: str) -> StoredEvent | None:
        with self._database.reading() as conn:
            row = conn.execute(select(t.events).where(t.events.c.id == event_id)).first()
        return None if row is None else event_from_row(row)

    def last_seq(self) -> int:
        with self._database.reading() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0))).scalar_one()
            )

    # -- replaying and copying -----------------------------------------------------------

    def rebuild(self) -> int:
        """Empty every projection and replay the whole log into it, in one transaction."""

        def work() -> int:
            replayed = 0
            with self._database.writing() as conn:
                # Writers wait until the rebuild commits, then write to what it rebuilt.
                self._database.dialect.hold_projections(conn)
                for table in reversed(t.PROJECTIONS):
                    conn.execute(delete(table))
                self._known_projects.clear()
                self._known_inline.clear()
                self._reset()
                projector = Projector(conn, self._known_projects, self._inserts)
                for events in log_pages(conn):
                    projector.apply(events)
                    replayed += len(events)
            return replayed

        return self._database.guard(work, "rebuild")

    def import_events(self, events: Sequence[StoredEvent | LogEntry]) -> int:
        engine = self._database.engine
        return self._database.guard(
            lambda: import_events(engine, self._inserts, events), "write to"
        )

    def log_after(self, seq: int, limit: int = 1_000) -> list[LogEntry]:
        with self._database.reading() as conn:
            return read_log(conn, seq, limit)

    # -- relays ---------------------------------------------------------------------

    def relay_position(self, name: str) -> int:
        with self._database.reading() as conn:
            return read_position(conn, name)

    def relay_positions(self) -> list[RelayPosition]:
        with self._database.reading() as conn:
            return read_positions(conn)

    def record_relay_position(self, name: str, seq: int, *, backwards: bool = False) -> None:
        engine = self._database.engine
        self._database.guard(
            lambda: write_position(engine, name, seq, backwards=backwards), "write to"
        )

    def relay_lease(self, name: str) -> RelayLease | None:
        engine = self._database.engine
        return self._database.guard(lambda: take_lease(engine, name), "reach")
