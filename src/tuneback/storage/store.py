"""The Store: the one object that owns tuneback's SQL.

Writes append events to the log and update the projections in the same
transaction; reads return domain objects. Every write goes through one writer
thread per store that commits whatever is waiting in one transaction (group
commit, :mod:`tuneback.storage.writer`); callers wait on their own result, and
async callers hold no thread while they wait. What a commit does — ids,
sequence numbers, narrow locks, projections — is :mod:`tuneback.storage.commit`;
the log stays gapless and in commit order, so a follower reading
``seq > n`` never misses an event.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Connection, Engine, Table, delete, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from tuneback.domain import (
    CategoricalConfig,
    ComparisonRecord,
    ContinuousConfig,
    Conversation,
    DatasetItemRecord,
    DatasetRecord,
    EventForgotten,
    EventPayload,
    FeedbackConfig,
    FeedbackRecord,
    FreeformConfig,
    Message,
    Project,
    ProjectSettings,
    Run,
    RunCompleted,
    RunFailed,
    StoredEvent,
    encode_payload,
    new_id,
)
from tuneback.errors import NotFoundError, StorageError, TuneBackError, ValidationError
from tuneback.storage import migrate
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.commit import GroupCommit, PreparedEvent, event_from_row, hold_log_tail
from tuneback.storage.engine import (
    WRITE_OPTION,
    describe_database_error,
    make_engine,
    parse_database_url,
)
from tuneback.storage.forget import ForgetCounts, forget_user
from tuneback.storage.projections import Projector, count_rows
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
from tuneback.storage.writer import GroupWriter

M = TypeVar("M", bound=BaseModel)

REBUILD_PAGE = 2_000
RULES_TTL = 1.0
"""Seconds a project's settings and feedback configs are kept between reads."""
RECENT_RUNS = 20_000
"""Runs kept in memory by id: a run never changes once stored, and ratings follow answers."""
_RULE_EVENTS = frozenset({"feedback.config_set", "project.configured"})


@dataclass(frozen=True)
class NewEvent:
    """A payload to append, with the id that makes retrying it safe (made up if absent).

    Appending an id that is already stored is a no-op when the new payload says
    the same thing, and a :class:`ConflictError` when it says something else.
    ``ensure`` keeps whatever is stored under the id if it is the same kind of
    thing in the same project (a conversation restated on every turn);
    ``once`` refuses feedback from a rater who already holds a current rating on
    the key, checked inside the write so two at once cannot both pass.
    """

    payload: EventPayload
    id: str | None = None
    ensure: bool = False
    once: bool = False


class Store:
    """All of tuneback's data, on SQLite or PostgreSQL.

    Construct it with a database URL; it migrates the schema to the newest
    version unless ``migrate=False``.
    """

    def __init__(self, url: str, *, migrate_schema: bool = True, echo: bool = False) -> None:
        self.url = parse_database_url(url)
        self.engine: Engine = make_engine(url, echo=echo)
        self._known_projects: set[str] = set()
        self._inserts = BulkInserts(self.engine.dialect)
        self._rules: dict[str, tuple[float, tuple[ProjectSettings, dict[str, Any]]]] = {}
        self._runs: dict[str, Run] = {}
        self._writer = GroupWriter(
            GroupCommit(
                self.engine,
                self._inserts,
                self._known_projects,
                committed=self._committed,
                describe=lambda: self.display_url,
            )
        )
        if migrate_schema:
            self._guard(lambda: migrate.upgrade(self.engine), "open")

    # -- lifecycle -----------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Finish the writes already queued, then release the database."""
        self._writer.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guard(self, action: Any, doing: str) -> Any:
        try:
            return action()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StorageError(
                f"cannot {doing} database {self.display_url}: {reason} "
                "(check TUNEBACK_DATABASE_URL and that the server is running)"
            ) from None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            if self.dialect == "postgresql":
                # Reads need no transaction of their own: skipping BEGIN/COMMIT
                # saves two round trips per read.
                with self.engine.connect() as conn:
                    yield conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise describe_database_error(exc, self.display_url) from None

    # -- the event log --------------------------------------------------------------

    def append(self, payload: EventPayload, *, event_id: str | None = None) -> StoredEvent:
        """Append one event; returns it once committed.

        Appending again with the same ``event_id`` and the same content changes
        nothing and returns the event stored the first time.
        """
        return self.append_many([NewEvent(payload, event_id)])[0]

    def append_many(self, events: Iterable[EventPayload | NewEvent]) -> list[StoredEvent]:
        """Append events in one transaction: all are stored, or none.

        Events whose id is already in the log are not appended again; their
        stored originals are returned in their place.
        """
        prepared = self._prepare(events)
        if not prepared:
            return []
        return self._writer.submit(prepared).result()

    async def append_async(
        self, payload: EventPayload, *, event_id: str | None = None
    ) -> StoredEvent:
        """:meth:`append` for a coroutine: waits for the commit without holding a thread."""
        return (await self.append_many_async([NewEvent(payload, event_id)]))[0]

    async def append_many_async(
        self, events: Iterable[EventPayload | NewEvent]
    ) -> list[StoredEvent]:
        """:meth:`append_many` for a coroutine."""
        prepared = self._prepare(events)
        if not prepared:
            return []
        return await self._writer.submit_async(prepared)

    def append_each(
        self, events: Sequence[EventPayload | NewEvent]
    ) -> list[StoredEvent | TuneBackError]:
        """Append events that stand alone: each is stored or refused on its own.

        They are queued together, so they normally share one commit; the result
        holds, in order, each stored event or the error that refused it.
        """
        futures = [self._writer.submit(self._prepare([event])) for event in events]
        results: list[StoredEvent | TuneBackError] = []
        for future in futures:
            try:
                results.append(future.result()[0])
            except TuneBackError as exc:
                results.append(exc)
        return results

    @staticmethod
    def _prepare(events: Iterable[EventPayload | NewEvent]) -> list[PreparedEvent]:
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

    def _committed(self, written: list[StoredEvent]) -> None:
        for event in written:
            if event.type in _RULE_EVENTS:
                self._rules.pop(event.project, None)
            elif isinstance(event.payload, RunCompleted | RunFailed):
                self._remember_run(event.payload.run)

    def _remember_run(self, run: Run) -> None:
        runs = self._runs
        runs[run.id] = run
        if len(runs) > RECENT_RUNS:
            # The oldest tenth goes: dicts keep insertion order.
            for old in list(runs)[: RECENT_RUNS // 10]:
                runs.pop(old, None)

    def recent_run(self, run_id: str) -> Run | None:
        """The run if it is in memory (written or read here lately), without a database trip."""
        return self._runs.get(run_id)

    def recent_rules(
        self, project: str
    ) -> tuple[ProjectSettings, dict[str, FeedbackConfigType]] | None:
        """:meth:`project_rules` if they are in memory and fresh, without a database trip."""
        cached = self._rules.get(project)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def events_after(
        self,
        seq: int = 0,
        limit: int = 1_000,
        *,
        project: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        """Events with a sequence number above ``seq``, oldest first."""
        query = select(t.events).where(t.events.c.seq > seq).order_by(t.events.c.seq).limit(limit)
        if project is not None:
            query = query.where(t.events.c.project == project)
        if types:
            query = query.where(t.events.c.type.in_(list(types)))
        with self._reading() as conn:
            return [event_from_row(row) for row in conn.execute(query)]

    def get_event(self, event_id: str) -> StoredEvent:
        with self._reading() as conn:
            row = conn.execute(select(t.events).where(t.events.c.id == event_id)).first()
        if row is None:
            raise NotFoundError(f"no event with id {event_id}")
        return event_from_row(row)

    def last_seq(self) -> int:
        with self._reading() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0))).scalar_one()
            )

    def rebuild(self) -> int:
        """Empty every projection and replay the whole log into it; returns events replayed.

        Runs in one transaction: if it fails, the old projections stay.
        """

        def work() -> int:
            replayed = 0
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    # Writers queue at the log's tail until the rebuild commits.
                    hold_log_tail(conn)
                    for table in reversed(t.PROJECTIONS):
                        conn.execute(delete(table))
                    self._known_projects.clear()
                    self._rules.clear()
                    projector = Projector(conn, self._known_projects, self._inserts)
                    after = 0
                    while True:
                        rows = conn.execute(
                            select(t.events)
                            .where(t.events.c.seq > after)
                            .order_by(t.events.c.seq)
                            .limit(REBUILD_PAGE)
                        ).all()
                        if not rows:
                            break
                        projector.apply(event_from_row(row) for row in rows)
                        replayed += len(rows)
                        after = rows[-1].seq
            return replayed

        return self._guard(work, "rebuild")  # type: ignore[no-any-return]

    def import_events(self, events: Sequence[StoredEvent | LogEntry]) -> int:
        """Append events exactly as another store numbered them (seq, id, time, payload).

        For copying a log from a stream: they must continue this log without a
        gap. The projections are not touched; :meth:`rebuild` makes them.
        Returns the new last ``seq``.
        """
        return self._guard(  # type: ignore[no-any-return]
            lambda: import_events(self.engine, self._inserts, events), "write to"
        )

    # -- stream relays ------------------------------------------------------------------

    def log_after(self, seq: int, limit: int = 1_000) -> list[LogEntry]:
        """Events after ``seq`` with their payloads as stored JSON text, for copying them on."""
        with self._reading() as conn:
            return read_log(conn, seq, limit)

    def relay_position(self, name: str) -> int:
        """The last ``seq`` the relay called ``name`` has published (0: none yet)."""
        with self._reading() as conn:
            return read_position(conn, name)

    def relay_positions(self) -> list[RelayPosition]:
        with self._reading() as conn:
            return read_positions(conn)

    def record_relay_position(self, name: str, seq: int, *, backwards: bool = False) -> None:
        """Move the relay's position forward to ``seq`` (or anywhere, with ``backwards``)."""
        self._guard(lambda: write_position(self.engine, name, seq, backwards=backwards), "write to")

    def relay_lease(self, name: str) -> RelayLease | None:
        """Become the one relay called ``name``, or None while another process is."""
        return self._guard(lambda: take_lease(self.engine, name), "reach")  # type: ignore[no-any-return]

    # -- reads ------------------------------------------------------------------------

    def _one(self, table: Table, model: type[M], key: str, what: str) -> M:
        with self._reading() as conn:
            row = conn.execute(select(table).where(table.c.id == key)).mappings().first()
        if row is None:
            raise NotFoundError(f"no {what} with id {key}")
        return model.model_validate(dict(row))

    def get_project(self, name: str) -> Project:
        """A project and its settings; one never written to has the default settings."""
        with self._reading() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.name == name)).first()
        if row is None:
            return Project(name=name)
        return Project(
            name=row.name,
            created_at=row.created_at,
            settings=ProjectSettings.model_validate(row.settings or {}),
        )

    def project_rules(self, project: str) -> tuple[ProjectSettings, dict[str, FeedbackConfigType]]:
        """A project's settings and feedback configs, read at most once a second.

        Every rating checks them, so they are kept for ``RULES_TTL`` seconds. A
        change made through this store is seen at once; one made by another
        process is seen within that time.
        """
        now = time.monotonic()
        cached = self._rules.get(project)
        if cached is not None and cached[0] > now:
            return cached[1]
        rules = (self.get_project(project).settings, self.feedback_configs(project))
        self._rules[project] = (now + RULES_TTL, rules)
        return rules

    def list_projects(self) -> list[str]:
        with self._reading() as conn:
            return list(
                conn.execute(select(t.projects.c.name).order_by(t.projects.c.name)).scalars()
            )

    def feedback_configs(self, project: str) -> dict[str, FeedbackConfigType]:
        """The feedback configs a project declared, by key."""
        c = t.feedback_configs.c
        query = select(c.key, c.config).where(c.project == project).order_by(c.key)
        with self._reading() as conn:
            return {
                row.key: _FEEDBACK_CONFIG.validate_python(row.config) for row in conn.execute(query)
            }

    def get_conversation(self, conversation_id: str) -> Conversation:
        return self._one(t.conversations, Conversation, conversation_id, "conversation")

    def list_conversations(
        self,
        project: str = "default",
        *,
        user: str | None = None,
        limit: int = 50,
        deleted: bool | None = None,
    ) -> list[Conversation]:
        """A project's conversations, newest first (one user's only, when ``user`` is given).

        ``deleted=False`` leaves out those their owner deleted from the chat,
        ``True`` lists only those, ``None`` both.
        """
        c = t.conversations.c
        query = select(t.conversations).where(c.project == project)
        if user is not None:
            query = query.where(c.user == user)
        if deleted is not None:
            query = query.where(c.deleted_at.is_not(None) if deleted else c.deleted_at.is_(None))
        query = query.order_by(c.started_at.desc(), c.id.desc()).limit(limit)
        with self._reading() as conn:
            return [Conversation.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def conversation_messages(self, conversation_id: str) -> list[Message]:
        """Every message of a conversation (all branches), oldest first."""
        c = t.messages.c
        query = (
            select(t.messages)
            .where(c.conversation_id == conversation_id)
            .order_by(c.created_at, c.id)
        )
        with self._reading() as conn:
            return [Message.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def first_user_messages(self, conversation_ids: Sequence[str]) -> dict[str, str]:
        """The first thing the user wrote in each conversation: what lists show as its title."""
        if not conversation_ids:
            return {}
        c = t.messages.c
        first = (
            select(c.conversation_id, func.min(c.created_at).label("created_at"))
            .where(c.conversation_id.in_(list(conversation_ids)), c.role == "user")
            .group_by(c.conversation_id)
            .subquery()
        )
        query = (
            select(c.conversation_id, c.content)
            .join(
                first,
                (first.c.conversation_id == c.conversation_id)
                & (first.c.created_at == c.created_at),
            )
            .where(c.role == "user")
        )
        with self._reading() as conn:
            return {row.conversation_id: row.content for row in conn.execute(query)}

    def conversation_runs(self, conversation_id: str) -> list[Run]:
        """Every run of a conversation, oldest first."""
        c = t.runs.c
        query = (
            select(t.runs).where(c.conversation_id == conversation_id).order_by(c.created_at, c.id)
        )
        with self._reading() as conn:
            return [Run.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def feedback_for_runs(self, run_ids: Sequence[str]) -> list[FeedbackRecord]:
        """Current feedback on many runs at once, oldest first."""
        if not run_ids:
            return []
        c = t.feedback.c
        query = (
            select(t.feedback)
            .where(c.run_id.in_(list(run_ids)), c.current.is_(True))
            .order_by(c.created_at, c.id)
        )
        with self._reading() as conn:
            return [_feedback_from_row(r) for r in conn.execute(query).mappings()]

    def get_message(self, message_id: str) -> Message:
        return self._one(t.messages, Message, message_id, "message")

    def get_run(self, run_id: str) -> Run:
        run = self._one(t.runs, Run, run_id, "run")
        self._remember_run(run)
        return run

    def list_runs(self, project: str = "default", *, limit: int = 100) -> list[Run]:
        """A project's runs, newest first."""
        c = t.runs.c
        query = (
            select(t.runs)
            .where(c.project == project)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )
        with self._reading() as conn:
            return [Run.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def get_feedback(self, feedback_id: str) -> FeedbackRecord:
        with self._reading() as conn:
            row = conn.execute(select(t.feedback).where(t.feedback.c.id == feedback_id)).mappings()
            found = row.first()
        if found is None:
            raise NotFoundError(f"no feedback with id {feedback_id}")
        return _feedback_from_row(found)

    def feedback_for_run(self, run_id: str, *, history: bool = False) -> list[FeedbackRecord]:
        """Feedback on a run, oldest first: current only, or with superseded and retracted."""
        c = t.feedback.c
        query = select(t.feedback).where(c.run_id == run_id).order_by(c.created_at, c.id)
        if not history:
            query = query.where(c.current.is_(True))
        with self._reading() as conn:
            return [_feedback_from_row(r) for r in conn.execute(query).mappings()]

    def get_comparison(self, comparison_id: str) -> ComparisonRecord:
        return self._one(t.comparisons, ComparisonRecord, comparison_id, "comparison")

    def list_datasets(self, project: str = "default") -> list[DatasetRecord]:
        return self._datasets(t.datasets.c.project == project)

    def _datasets(self, where: Any) -> list[DatasetRecord]:
        d, i = t.datasets.c, t.dataset_items.c
        counts = (
            select(i.dataset_id, func.count().label("item_count")).group_by(i.dataset_id).subquery()
        )
        query = (
            select(t.datasets, func.coalesce(counts.c.item_count, 0).label("item_count"))
            .outerjoin(counts, counts.c.dataset_id == d.id)
            .where(where)
            .order_by(d.name)
        )
        with self._reading() as conn:
            return [DatasetRecord.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def get_dataset(self, dataset_id: str) -> DatasetRecord | None:
        for dataset in self._datasets(t.datasets.c.id == dataset_id):
            return dataset
        return None

    def dataset_items(self, dataset_id: str) -> list[DatasetItemRecord]:
        c = t.dataset_items.c
        query = select(t.dataset_items).where(c.dataset_id == dataset_id).order_by(c.version)
        with self._reading() as conn:
            return [
                DatasetItemRecord.model_validate(dict(r)) for r in conn.execute(query).mappings()
            ]

    # -- administration -------------------------------------------------------------

    def forget_user(self, name: str, *, project: str | None = None) -> ForgetCounts:
        """Remove an end user's data from every table and from the log's readable history.

        Their events become ``event.forgotten`` tombstones in place (see
        :mod:`tuneback.storage.forget` for what counts as theirs); writes queue
        at the log's tail until it commits. Raises :class:`NotFoundError` when
        ``name`` has no data (in ``project``, when given).
        """
        counts, runs = self._guard(lambda: forget_user(self.engine, name, project), "write to")
        for run_id in runs:
            self._runs.pop(run_id, None)
        return counts  # type: ignore[no-any-return]

    def info(self) -> dict[str, Any]:
        """What ``tuneback db info`` shows: where the data is, its schema version, row counts."""

        def work() -> dict[str, Any]:
            with self._reading() as conn:
                counts = {table.name: count_rows(conn, table) for table in t.PROJECTIONS}
                counts["events"] = count_rows(conn, t.events)
                last_seq, relays = _relay_lag(conn)
            return {
                "url": self.display_url,
                "dialect": self.dialect,
                "revision": migrate.current_revision(self.engine),
                "head": migrate.head_revision(),
                "last_seq": last_seq,
                "relays": relays,
                "rows": counts,
            }

        return self._guard(work, "read")  # type: ignore[no-any-return]

    def relay_lag(self) -> list[dict[str, Any]]:
        """How far each relay to NATS is behind the log (cheap: no row counts)."""

        def work() -> list[dict[str, Any]]:
            with self._reading() as conn:
                return _relay_lag(conn)[1]

        return self._guard(work, "read")  # type: ignore[no-any-return]

    def ping(self) -> None:
        """Raise :class:`StorageError` unless the database answers."""

        def work() -> None:
            with self._reading() as conn:
                conn.execute(text("SELECT 1"))

        try:
            self._guard(work, "reach")
        except DBAPIError as exc:
            raise StorageError(f"database {self.display_url} is not answering: {exc}") from None


FeedbackConfigType = ContinuousConfig | CategoricalConfig | FreeformConfig
_FEEDBACK_CONFIG: TypeAdapter[FeedbackConfigType] = TypeAdapter(FeedbackConfig)


def _feedback_from_row(row: Any) -> FeedbackRecord:
    data = dict(row)
    del data["current"]  # derived from the history marks, which the record carries
    return FeedbackRecord.model_validate(data)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _relay_lag(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
    """The log's last seq, and for each relay its position and how far it is behind."""
    last = conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0)))
    last_seq = int(last.scalar_one())
    relays = [
        {
            "name": r.name,
            "seq": r.seq,
            "behind": last_seq - r.seq,
            "updated_at": r.updated_at,
            # When the oldest event still waiting was committed: the lag in time.
            "waiting_since": conn.execute(
                select(t.events.c.recorded_at).where(t.events.c.seq == r.seq + 1)
            ).scalar(),
        }
        for r in read_positions(conn)
    ]
    return last_seq, relays
