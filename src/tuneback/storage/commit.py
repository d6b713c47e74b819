"""Committing a group of write requests: ids checked, sequence numbers given, projections applied.

This is what the writer thread (:mod:`tuneback.storage.writer`) runs for each
group, in one transaction:

1. take the narrow locks the group's projections need (one rater's rating of
   one answer, one dataset's version, one feedback config), sorted, so two
   writers never deadlock;
2. look up the ids callers named (a retry is answered with what is stored;
   the same id carrying something else is a conflict);
3. apply the projections;
4. take the log's tail — on SQLite the file's one writer lock
   (``BEGIN IMMEDIATE``) already is; on PostgreSQL an advisory lock for this
   schema — number the events ``max(seq) + 1 …``, insert them, and commit.

On PostgreSQL, writers in several processes do steps 1–3 side by side; they
queue only for step 4, which is one query, one insert and the commit. Holding
the tail through the commit is what keeps ``seq`` gapless and in commit order,
so a follower reading ``seq > n`` can never miss an event that commits late,
and a replay applies dependent writes in the order they committed (a writer
that waited for another's narrow lock reaches the tail after it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from tuneback.domain import (
    EventForgotten,
    EventPayload,
    FeedbackRecorded,
    StoredEvent,
    utcnow,
)
from tuneback.errors import ConflictError, StorageError, TuneBackError
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.engine import WRITE_OPTION, Dialect, EncodedJson, describe_database_error
from tuneback.storage.projections import Projector, lock_keys, rating_taken, runs_rated_by
from tuneback.storage.rows import event_from_row
from tuneback.storage.writer import WriteRequest

LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class PreparedEvent:
    """An event ready to store: its id fixed before the write, its payload encoded."""

    id: str
    payload: EventPayload
    encoded: str
    given: bool
    """The caller named the id: it may already be stored (a retry)."""
    ensure: bool = False
    """Keep what is stored under this id if it is the same kind of thing in the same project."""
    once: bool = False
    """Feedback only: refuse it if the rater already holds a current rating on this key."""


Outcome = list[StoredEvent] | TuneBackError


class GroupCommit:
    """Commits groups of requests on one engine; called by the writer thread only."""

    def __init__(
        self,
        engine: Engine,
        inserts: BulkInserts,
        known_projects: set[str],
        *,
        committed: Callable[[list[StoredEvent]], None],
        describe: Callable[[], str],
    ) -> None:
        self._engine = engine
        self._inserts = inserts
        self._known_projects = known_projects
        self._committed = committed
        self._describe = describe
        self._dialect = Dialect.of(engine)

    def __call__(self, group: list[WriteRequest]) -> None:
        try:
            outcomes = self._write(group)
        except Exception as exc:
            failure = self._failure(exc)
            if len(group) > 1 and not isinstance(failure, StorageError):
                # The group's transaction failed as a whole: find the request at
                # fault by committing each alone.
                for request in group:
                    self([request])
                return
            if isinstance(exc, IntegrityError) and group[0].attempts == 0:
                # Another process stored one of these ids between our lookup and
                # our insert; looking again now answers with theirs.
                group[0].attempts += 1
                self(group)
                return
            # The one request at fault, or every request when the database failed.
            for request in group:
                request.fail(failure)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, TuneBackError):
                request.fail(outcome)
            else:
                request.done(outcome)

    def _failure(self, exc: Exception) -> TuneBackError:
        if isinstance(exc, TuneBackError):
            return exc
        if isinstance(exc, IntegrityError):
            reason = str(exc.orig).splitlines()[0] if exc.orig else None
            return ConflictError(
                "the write conflicts with data already stored "
                "(an id is already used by a different object)",
                details={"reason": reason},
            )
        if isinstance(exc, DBAPIError):
            return describe_database_error(exc, self._describe())
        if isinstance(exc, LookupError):
            return ConflictError(str(exc).strip("'\""))
        raise exc

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                # Projects noted as known in a rolled-back transaction were never
                # stored; forget them so they are written again.
                self._known_projects.clear()
                raise

    def _write(self, group: list[WriteRequest]) -> list[Outcome]:
        events = [e for r in group for e in r.events]
        with self._transaction() as conn:
            if self._dialect.writers_overlap:
                payloads = [e.payload for e in events]
                rated = runs_rated_by(conn, payloads)
                self._dialect.lock_slots(conn, (k for p in payloads for k in lock_keys(p, rated)))
            stored = self._lookup(conn, [e.id for e in events if e.given])
            outcomes: list[Outcome] = []
            fresh: list[PreparedEvent] = []
            for request in group:
                try:
                    placed = self._admit(conn, request.events, stored, fresh)
                except TuneBackError as exc:
                    outcomes.append(exc)
                    continue
                outcomes.append(placed)  # type: ignore[arg-type]
            written = self._store(conn, fresh)
            by_id = {e.id: e for e in written}
            resolved: list[Outcome] = []
            for outcome in outcomes:
                if isinstance(outcome, TuneBackError):
                    resolved.append(outcome)
                    continue
                resolved.append([by_id.get(e.id) or e for e in outcome])
        if written:
            self._committed(written)
        return resolved

    def _admit(
        self,
        conn: Connection,
        events: Sequence[PreparedEvent],
        stored: dict[str, StoredEvent | PreparedEvent],
        fresh: list[PreparedEvent],
    ) -> list[StoredEvent | PreparedEvent]:
        """Place one request's events: the stored original for a retry, else new.

        Raises (and places nothing) when an id names something else.
        """
        placed: list[StoredEvent | PreparedEvent] = []
        mine: dict[str, PreparedEvent] = {}
        for event in events:
            earlier = mine.get(event.id) or stored.get(event.id)
            if earlier is not None:
                _check_same(earlier, event)
                placed.append(earlier)
                continue
            if event.once and _rated(conn, event, fresh + list(mine.values())):
                assert isinstance(event.payload, FeedbackRecorded)
                key = event.payload.feedback.key
                raise ConflictError(
                    f"you already rated this answer ({key}) and ratings are locked in this project",
                    details={"key": key},
                )
            mine[event.id] = event
            placed.append(event)
        stored.update(mine)
        fresh.extend(mine.values())
        return placed

    def _store(self, conn: Connection, fresh: list[PreparedEvent]) -> list[StoredEvent]:
        if not fresh:
            return []
        recorded_at = utcnow()

        def numbered(first: int) -> list[StoredEvent]:
            # Built without validation: every field is already valid.
            return [
                StoredEvent.model_construct(
                    seq=first + n,
                    id=e.id,
                    type=e.payload.type,
                    version=e.payload.version,
                    project=e.payload.project,
                    recorded_at=recorded_at,
                    payload=e.payload,
                )
                for n, e in enumerate(fresh)
            ]

        projector = Projector(conn, self._known_projects, self._inserts)
        if self._dialect.writers_overlap:
            # The projections do not read the number, so they go in before the
            # tail is taken: writers in other processes do this part side by side.
            projector.apply(numbered(0))
            self._dialect.hold_log_tail(conn)
            written = numbered(_last_seq(conn) + 1)
        else:
            # This writer already holds the whole file: number the events once.
            written = numbered(_last_seq(conn) + 1)
            projector.apply(written)
        self._inserts(
            conn,
            t.events,
            [
                {
                    "seq": w.seq,
                    "id": w.id,
                    "type": w.type,
                    "version": w.version,
                    "project": w.project,
                    "recorded_at": recorded_at,
                    "payload": EncodedJson(e.encoded),
                }
                for w, e in zip(written, fresh, strict=True)
            ],
        )
        return written

    @staticmethod
    def _lookup(conn: Connection, ids: list[str]) -> dict[str, StoredEvent | PreparedEvent]:
        found: dict[str, StoredEvent | PreparedEvent] = {}
        one_of = Dialect.of(conn).one_of
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            rows = conn.execute(select(t.events).where(one_of(t.events.c.id, chunk)))
            found.update((row.id, event_from_row(row)) for row in rows)
        return found


def _last_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0))).scalar_one())


def _rated(conn: Connection, event: PreparedEvent, pending: list[PreparedEvent]) -> bool:
    payload = event.payload
    assert isinstance(payload, FeedbackRecorded)
    feedback = payload.feedback
    for other in pending:
        if isinstance(other.payload, FeedbackRecorded):
            o = other.payload.feedback
            if (o.run_id, o.conversation_id, o.key, o.user) == (
                feedback.run_id,
                feedback.conversation_id,
                feedback.key,
                feedback.user,
            ):
                return True
    return rating_taken(conn, feedback)


def _check_same(earlier: StoredEvent | PreparedEvent, wanted: PreparedEvent) -> None:
    """A retry is a no-op only when it carries the same thing as the stored event."""
    payload = earlier.payload
    if isinstance(payload, EventForgotten):
        # Answering with the tombstone would hand a caller an event it never
        # wrote; storing the retry would bring back what was forgotten.
        raise ConflictError(
            f"event {wanted.id} was forgotten at its user's request and cannot be written again",
            details={"id": wanted.id, "forgotten_at": payload.forgotten_at.isoformat()},
        )
    same_kind = type(payload) is type(wanted.payload) and payload.project == wanted.payload.project
    if same_kind and (wanted.ensure or _restates(payload, wanted.payload)):
        return
    kind = payload.type if payload.project == wanted.payload.project else "event"
    raise ConflictError(
        f"id {wanted.id} is already used by a different {kind}; "
        "use a new id for a new object (a retry must send the same content)",
        details={"id": wanted.id},
    )


def _restates(stored: EventPayload, wanted: EventPayload) -> bool:
    """Every field the writer set is what was stored (defaults such as times may differ)."""
    given = wanted.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return _subset(given, stored.model_dump(mode="json", by_alias=True))


def _subset(given: Any, stored: Any) -> bool:
    if isinstance(given, dict) and isinstance(stored, dict):
        return all(k in stored and _subset(v, stored[k]) for k, v in given.items())
    if isinstance(given, list) and isinstance(stored, list):
        return len(given) == len(stored) and all(map(_subset, given, stored))
    return bool(given == stored)
