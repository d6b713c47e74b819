"""The Store: the one object through which tuneback reads and writes its data.

A thin front over the parts that do the work, each in its own module:

- :mod:`~tuneback.storage.engine` — the database, its dialect, and how reads and
  writes take connections;
- :mod:`~tuneback.storage.log` — the event log: appends through one writer
  thread that commits whatever is waiting in one transaction (group commit;
  what a commit does is :mod:`~tuneback.storage.commit`), following, replay;
- :mod:`~tuneback.storage.reads` — plain reads of the projections, mapped to
  domain objects by :mod:`~tuneback.storage.rows`;
- :mod:`~tuneback.storage.caches` — each project's rules and recent runs in memory.

Writes append events to the log and update the projections in the same
transaction; a write is acknowledged only after it committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine

from tuneback.domain import (
    ComparisonRecord,
    Conversation,
    DatasetItemRecord,
    DatasetRecord,
    EventPayload,
    FeedbackRecord,
    Message,
    Project,
    Run,
    StoredEvent,
)
from tuneback.errors import NotFoundError, TuneBackError
from tuneback.storage import migrate
from tuneback.storage import tables as t
from tuneback.storage.caches import Rules, StoreCaches
from tuneback.storage.engine import Database
from tuneback.storage.forget import ForgetCounts, forget_user
from tuneback.storage.log import EventLog, NewEvent
from tuneback.storage.reads import Reads
from tuneback.storage.relay import LogEntry, RelayLease, RelayPosition
from tuneback.storage.rows import FeedbackConfigType

__all__ = ["FeedbackConfigType", "NewEvent", "Store"]


class Store:
    """All of tuneback's data, on SQLite or PostgreSQL.

    Construct it with a database URL; it migrates the schema to the newest
    version unless ``migrate_schema=False``.
    """

    def __init__(self, url: str, *, migrate_schema: bool = True, echo: bool = False) -> None:
        self.database = Database(url, echo=echo)
        self.url = self.database.url
        self.engine: Engine = self.database.engine
        self.reads = Reads(self.database)
        self.caches = StoreCaches(
            lambda project: (self.get_project(project).settings, self.feedback_configs(project))
        )
        self.log = EventLog(
            self.database, committed=self.caches.committed, reset=self.caches.forget_rules
        )
        if migrate_schema:
            self.database.guard(lambda: migrate.upgrade(self.engine), "open")

    # -- lifecycle -----------------------------------------------------------------

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.database.dialect.name

    @property
    def display_url(self) -> str:
        return self.database.display_url

    def close(self) -> None:
        """Finish the writes already queued, then release the database."""
        self.log.close()
        self.database.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the event log --------------------------------------------------------------

    def append(self, payload: EventPayload, *, event_id: str | None = None) -> StoredEvent:
        """Append one event; returns it once committed.

        Appending again with the same ``event_id`` and the same content changes
        nothing and returns the event stored the first time.
        """
        return self.log.append_many([NewEvent(payload, event_id)])[0]

    def append_many(self, events: Iterable[EventPayload | NewEvent]) -> list[StoredEvent]:
        """Append events in one transaction: all are stored, or none.

        Events whose id is already in the log are not appended again; their
        stored originals are returned in their place.
        """
        return self.log.append_many(events)

    async def append_async(
        self, payload: EventPayload, *, event_id: str | None = None
    ) -> StoredEvent:
        """:meth:`append` for a coroutine: waits for the commit without holding a thread."""
        return (await self.log.append_many_async([NewEvent(payload, event_id)]))[0]

    async def append_many_async(
        self, events: Iterable[EventPayload | NewEvent]
    ) -> list[StoredEvent]:
        """:meth:`append_many` for a coroutine."""
        return await self.log.append_many_async(events)

    def append_each(
        self, events: Sequence[EventPayload | NewEvent]
    ) -> list[StoredEvent | TuneBackError]:
        """Append events that stand alone: each is stored or refused on its own.

        They are queued together, so they normally share one commit; the result
        holds, in order, each stored event or the error that refused it.
        """
        return self.log.append_each(events)

    def events_after(
        self,
        seq: int = 0,
        limit: int = 1_000,
        *,
        project: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        """Events with a sequence number above ``seq``, oldest first."""
        return self.log.events_after(seq, limit, project=project, types=types)

    def get_event(self, event_id: str) -> StoredEvent:
        found = self.log.get_event(event_id)
        if found is None:
            raise NotFoundError(f"no event with id {event_id}")
        return found

    def last_seq(self) -> int:
        return self.log.last_seq()

    def rebuild(self) -> int:
        """Empty every projection and replay the whole log into it; returns events replayed.

        Runs in one transaction: if it fails, the old projections stay.
        """
        return self.log.rebuild()

    def import_events(self, events: Sequence[StoredEvent | LogEntry]) -> int:
        """Append events exactly as another store numbered them (seq, id, time, payload).

        For copying a log from a stream: they must continue this log without a
        gap. The projections are not touched; :meth:`rebuild` makes them.
        Returns the new last ``seq``.
        """
        return self.log.import_events(events)

    # -- stream relays ------------------------------------------------------------------

    def log_after(self, seq: int, limit: int = 1_000) -> list[LogEntry]:
        """Events after ``seq`` with their payloads as stored JSON text, for copying them on."""
        return self.log.log_after(seq, limit)

    def relay_position(self, name: str) -> int:
        """The last ``seq`` the relay called ``name`` has published (0: none yet)."""
        return self.log.relay_position(name)

    def relay_positions(self) -> list[RelayPosition]:
        return self.log.relay_positions()

    def record_relay_position(self, name: str, seq: int, *, backwards: bool = False) -> None:
        """Move the relay's position forward to ``seq`` (or anywhere, with ``backwards``)."""
        self.log.record_relay_position(name, seq, backwards=backwards)

    def relay_lease(self, name: str) -> RelayLease | None:
        """Become the one relay called ``name``, or None while another process is."""
        return self.log.relay_lease(name)

    # -- what is kept in memory ---------------------------------------------------------

    def project_rules(self, project: str) -> Rules:
        """A project's settings and feedback configs, read at most once a second.

        Every rating checks them, so they are kept for ``RULES_TTL`` seconds. A
        change made through this store is seen at once; one made by another
        process is seen within that time.
        """
        return self.caches.rules(project)

    def recent_rules(self, project: str) -> Rules | None:
        """:meth:`project_rules` if they are in memory and fresh, without a database trip."""
        return self.caches.fresh_rules(project)

    def recent_run(self, run_id: str) -> Run | None:
        """The run if it is in memory (written or read here lately), without a database trip."""
        return self.caches.run(run_id)

    # -- reads ------------------------------------------------------------------------

    def get_project(self, name: str) -> Project:
        """A project and its settings; one never written to has the default settings."""
        return self.reads.get_project(name)

    def list_projects(self) -> list[str]:
        return self.reads.list_projects()

    def feedback_configs(self, project: str) -> dict[str, FeedbackConfigType]:
        """The feedback configs a project declared, by key."""
        return self.reads.feedback_configs(project)

    def get_conversation(self, conversation_id: str) -> Conversation:
        return self.reads.get_conversation(conversation_id)

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
        return self.reads.list_conversations(project, user=user, limit=limit, deleted=deleted)

    def conversation_messages(self, conversation_id: str) -> list[Message]:
        """Every message of a conversation (all branches), oldest first."""
        return self.reads.conversation_messages(conversation_id)

    def first_user_messages(self, conversation_ids: Sequence[str]) -> dict[str, str]:
        """The first thing the user wrote in each conversation: what lists show as its title."""
        return self.reads.first_user_messages(conversation_ids)

    def conversation_runs(self, conversation_id: str) -> list[Run]:
        """Every run of a conversation, oldest first."""
        return self.reads.conversation_runs(conversation_id)

    def feedback_for_runs(self, run_ids: Sequence[str]) -> list[FeedbackRecord]:
        """Current feedback on many runs at once, oldest first."""
        return self.reads.feedback_for_runs(run_ids)

    def get_message(self, message_id: str) -> Message:
        return self.reads.get_message(message_id)

    def get_run(self, run_id: str) -> Run:
        run = self.reads.get_run(run_id)
        self.caches.remember_run(run)
        return run

    def list_runs(self, project: str = "default", *, limit: int = 100) -> list[Run]:
        """A project's runs, newest first."""
        return self.reads.list_runs(project, limit=limit)

    def get_feedback(self, feedback_id: str) -> FeedbackRecord:
        return self.reads.get_feedback(feedback_id)

    def feedback_for_run(self, run_id: str, *, history: bool = False) -> list[FeedbackRecord]:
        """Feedback on a run, oldest first: current only, or with superseded and retracted."""
        return self.reads.feedback_for_run(run_id, history=history)

    def get_comparison(self, comparison_id: str) -> ComparisonRecord:
        return self.reads.get_comparison(comparison_id)

    def list_datasets(self, project: str = "default") -> list[DatasetRecord]:
        return self.reads.datasets(t.datasets.c.project == project)

    def get_dataset(self, dataset_id: str) -> DatasetRecord | None:
        for dataset in self.reads.datasets(t.datasets.c.id == dataset_id):
            return dataset
        return None

    def dataset_items(self, dataset_id: str) -> list[DatasetItemRecord]:
        return self.reads.dataset_items(dataset_id)

    # -- administration -------------------------------------------------------------

    def forget_user(self, name: str, *, project: str | None = None) -> ForgetCounts:
        """Remove an end user's data from every table and from the log's readable history.

        Their events become ``event.forgotten`` tombstones in place (see
        :mod:`tuneback.storage.forget` for what counts as theirs); writes queue
        at the log's tail until it commits. Raises :class:`NotFoundError` when
        ``name`` has no data (in ``project``, when given).
        """
        counts, runs = self.database.guard(
            lambda: forget_user(self.engine, name, project), "write to"
        )
        self.caches.forget_runs(runs)
        return counts

    def info(self) -> dict[str, Any]:
        """What ``tuneback db info`` shows: where the data is, its schema version, row counts."""
        return self.reads.info()

    def relay_lag(self) -> list[dict[str, Any]]:
        """How far each relay to NATS is behind the log (cheap: no row counts)."""
        return self.reads.relay_lag()

    def ping(self) -> None:
        """Raise :class:`StorageError` unless the database answers."""
        self.reads.ping()
