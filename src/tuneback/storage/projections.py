"""Apply events to the projection tables.

The same code runs when an event is appended (in the append's transaction) and
when the log is replayed by ``rebuild``, which is what makes a rebuild reproduce
the projections exactly. Nothing here reads the clock: every value comes from
the event.

Plain inserts are buffered and written with one ``executemany`` per table;
anything that reads or updates earlier rows flushes the buffer first, so events
in one batch see each other in order. Some never do:

* a retraction of a rating still in the buffer marks its row there; one of a
  stored rating is written with the buffer, after the ratings that replace
  others (a rating of a run or conversation with such a retraction waiting
  flushes first);
* a conversation ended, renamed or deleted changes its buffered row, or
  updates the stored one (nothing in the buffer reads those columns);
* a dataset item flushes only when the buffer holds its dataset.

So a big batch of conversations, rating, retracting and curating stays one batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tuneback.domain import (
    AnnotationTaskCreated,
    AuditRecorded,
    ComparisonRecorded,
    ConversationDeleted,
    ConversationEnded,
    ConversationRenamed,
    ConversationStarted,
    DatasetCreated,
    DatasetItemAdded,
    DatasetItemRemoved,
    EventForgotten,
    EventPayload,
    Feedback,
    FeedbackConfigSet,
    FeedbackRecorded,
    FeedbackRetracted,
    MessageAdded,
    ProjectConfigured,
    ReviewQueueCreated,
    RunCompleted,
    RunFailed,
    StoredEvent,
)
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInserts
from tuneback.storage.engine import DIALECTS, Dialect
from tuneback.storage.review_membership import MembershipChanges
from tuneback.storage.rollups import (
    Rating,
    RollupChanges,
    runs_of_conversations,
)


def row_of(model: BaseModel) -> dict[str, Any]:
    """A domain object as a table row: JSON data for nested values, datetimes kept."""
    row = model.model_dump(mode="json")
    for name in row:
        value = getattr(model, name)
        if isinstance(value, datetime):
            row[name] = value
    return row


_fb = t.feedback.c
# Run and conversation ids are unique across projects, so the project is left
# out: with it, SQLite's planner may pick the (project, key) index and scan.
_SAME_RATER = and_(
    _fb.key == bindparam("p_key"),
    _fb.user == bindparam("p_user"),
    _fb.current.is_(True),
)
_SUPERSEDE_ON_RUN = (
    update(t.feedback)
    .where(_fb.run_id == bindparam("p_run"), _SAME_RATER)
    .values(superseded_by=bindparam("p_new"), current=False)
    .returning(_fb.run_id, _fb.key, _fb.kind, _fb.score)
)


def _stored_raters_query(dialect: Dialect) -> Select[Any]:
    """Which (run, key, user) slots, given in step as ``runs``, ``keys``, ``users``, hold a
    current rating.

    On PostgreSQL the three arrays are zipped into slots, each one probe of the
    (run, key, user) index: the cost follows the group, not how many ratings its
    runs already hold (three lists matched every rating of a listed run by any
    listed user, and read them all). SQLite reads the index for each listed run
    only with three lists; the few rows that match the lists but not one slot
    are dropped by the caller.
    """
    if dialect.postgres:
        names = ("runs", "keys", "users")
        slots = (
            func.unnest(*(bindparam(name, type_=ARRAY(String)) for name in names))
            .table_valued("run_id", "key", "user", name="slots")
            .render_derived()
        )
        # LATERAL with LIMIT 1: each slot is one probe of the index even in a plan
        # made while the table was small (a join would then hash the whole table).
        hit = (
            select(literal_column("1"))
            .where(
                _fb.run_id == slots.c.run_id,
                _fb.key == slots.c.key,
                _fb.user == slots.c.user,
                _fb.current.is_(True),
            )
            .limit(1)
            .lateral()
        )
        return select(slots.c.run_id, slots.c.key, slots.c.user).join_from(slots, hit, true())
    return select(_fb.run_id, _fb.key, _fb.user).where(
        dialect.one_of(_fb.run_id, "runs"),
        dialect.one_of(_fb.key, "keys"),
        dialect.one_of(_fb.user, "users"),
        _fb.current.is_(True),
    )


_STORED_RATERS = {dialect.name: _stored_raters_query(dialect) for dialect in DIALECTS}
_CHUNK = 500
_RATED_BY = select(_fb.run_id, _fb.conversation_id).where(_fb.id == bindparam("p_id"))
_RETRACT = (
    update(t.feedback)
    .where(_fb.id == bindparam("p_id"), _fb.retracted_at.is_(None))
    .values(retracted_at=bindparam("p_at"), current=False)
)
_SUPERSEDE_ON_CONVERSATION = (
    update(t.feedback)
    .where(_fb.run_id.is_(None), _fb.conversation_id == bindparam("p_conversation"), _SAME_RATER)
    .values(superseded_by=bindparam("p_new"), current=False)
)


class Projector:
    """Applies a sequence of events to the projections on one connection."""

    def __init__(self, conn: Connection, known_projects: set[str], inserts: BulkInserts) -> None:
        self._conn = conn
        self._insert = inserts
        self._known_projects = known_projects
        self._pending: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        # The buffered conversations, ratings and datasets by id: a later event of
        # the same batch that changes one changes its row here, or knows it must
        # write the buffer first (a dataset item reads its dataset's version).
        self._buffered: dict[tuple[Table, str], dict[str, Any]] = {}
        self._pending_ratings: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._supersede_stored: list[dict[str, Any]] = []
        self._membership = MembershipChanges()
        self._rollups = RollupChanges()
        self._flushed_ratings: list[dict[str, Any]] = []
        # Each dataset's version as this batch left it: only this transaction
        # changes it while the dataset's lock (or SQLite's whole file) is held.
        self._versions: dict[str, int] = {}
        # Retractions of stored ratings, and what those rate: a new rating of
        # one of these must wait until they are written.
        self._retractions: list[dict[str, Any]] = []
        self._retracting: set[tuple[str, str]] = set()
        self._handlers: dict[type[EventPayload], Callable[[Any, StoredEvent], None]] = {
            ConversationStarted: self._conversation_started,
            ConversationEnded: self._conversation_ended,
            ConversationRenamed: self._conversation_renamed,
            ConversationDeleted: self._conversation_deleted,
            MessageAdded: self._message_added,
            RunCompleted: self._run_recorded,
            RunFailed: self._run_recorded,
            FeedbackRecorded: self._feedback_recorded,
            FeedbackRetracted: self._feedback_retracted,
            ComparisonRecorded: self._comparison_recorded,
            DatasetCreated: self._dataset_created,
            DatasetItemAdded: self._dataset_item_added,
            DatasetItemRemoved: self._dataset_item_removed,
            EventForgotten: self._event_forgotten,
            FeedbackConfigSet: self._feedback_config_set,
            ProjectConfigured: self._project_configured,
            ReviewQueueCreated: self._review_queue_created,
            AnnotationTaskCreated: self._annotation_task_created,
            AuditRecorded: self._audit_recorded,
        }

    def apply(self, events: Iterable[StoredEvent]) -> None:
        for event in events:
            self._ensure_project(event)
            self._handlers[type(event.payload)](event.payload, event)
            self._membership.note(event.payload)
        self.flush()
        self._membership.write(self._conn)
        self._rollups.write(self._conn)

    def flush(self) -> None:
        # New runs are counted once they are in, with whatever rates them by
        # then. A rating of a stored run changes its rollups by its own numbers
        # and those of the rating it replaces. Runs that move to a conversation's
        # system prompt, and those with a rating retracted, are counted again,
        # before and after.
        new_rows = list(self._pending.get(t.runs, ()))
        conversations = {row["id"]: row for row in self._pending.get(t.conversations, ())}
        new_runs = {row["id"] for row in new_rows}
        retracted = {run for kind, run in self._retracting if kind == "run"}
        moved = (self._runs_moved() | retracted) - new_runs
        with self._rollups.around(self._conn, moved):
            lost = self._write_pending()
            gained = [
                Rating(row["run_id"], row["key"], row["kind"], row["score"])
                for row in self._flushed_ratings
                if row["current"] and row["run_id"] is not None
            ]
        self._flushed_ratings = []
        counted = new_runs | moved
        self._rollups.rated(
            self._conn,
            [r for r in gained if r.run_id not in counted],
            [r for r in lost if r.run_id not in counted],
        )
        if new_rows:
            self._rollups.add_new(self._conn, new_rows, conversations)

    def _runs_moved(self) -> set[str]:
        """Stored runs logged before their conversation, which moves them to its system prompt."""
        started = [row["id"] for row in self._pending.get(t.conversations, ())]
        return runs_of_conversations(self._conn, started) if started else set()

    def _write_pending(self) -> list[Rating]:
        """Write what is waiting; returns the stored ratings it replaced."""
        # Stored ratings are superseded before this batch's rows go in, so the
        # UPDATE can only touch rows that were there before. Each rating on a
        # run is replaced by its own statement, which returns what it replaced.
        lost = [
            Rating(*row)
            for p in self._stored_raters()
            for row in self._conn.execute(_SUPERSEDE_ON_RUN, p)
        ]
        on_conversation = [p for p in self._supersede_stored if p["p_run"] is None]
        if on_conversation:
            self._conn.execute(_SUPERSEDE_ON_CONVERSATION, on_conversation)
        self._supersede_stored.clear()
        self._pending_ratings.clear()
        self._flushed_ratings = self._pending.get(t.feedback, [])
        for table, rows in self._pending.items():
            self._insert(self._conn, table, rows)
        if self._retractions:
            self._conn.execute(_RETRACT, self._retractions)
        self._pending.clear()
        self._buffered.clear()
        self._retractions.clear()
        self._retracting.clear()
        return lost

    def _stored_raters(self) -> list[dict[str, Any]]:
        """The pending re-ratings of runs whose rater has a current rating stored."""
        on_run = [p for p in self._supersede_stored if p["p_run"] is not None]
        held: set[tuple[Any, ...]] = set()
        for start in range(0, len(on_run), _CHUNK):
            chunk = on_run[start : start + _CHUNK]
            # One entry per slot, in step (repeats are harmless in a list).
            lists = {
                "runs": [p["p_run"] for p in chunk],
                "keys": [p["p_key"] for p in chunk],
                "users": [p["p_user"] for p in chunk],
            }
            query = _STORED_RATERS[self._conn.dialect.name]
            held.update(map(tuple, self._conn.execute(query, lists)))
        return [p for p in on_run if (p["p_run"], p["p_key"], p["p_user"]) in held]

    def _ensure_project(self, event: StoredEvent) -> None:
        # An audit names a project without making one: a failed login or a key
        # made for a project that has no data yet must not add it to the list.
        if event.project in self._known_projects or isinstance(event.payload, AuditRecorded):
            return
        self.flush()
        stmt = Dialect.of(self._conn).insert(t.projects).on_conflict_do_nothing()
        self._conn.execute(stmt, {"name": event.project, "created_at": event.recorded_at})
        self._known_projects.add(event.project)

    def _conversation_started(self, payload: ConversationStarted, event: StoredEvent) -> None:
        row = row_of(payload.conversation)
        self._pending[t.conversations].append(row)
        self._buffered[(t.conversations, row["id"])] = row

    def _conversation_ended(self, payload: ConversationEnded, event: StoredEvent) -> None:
        self._change_conversation(payload.conversation_id, ended_at=payload.ended_at)

    def _conversation_renamed(self, payload: ConversationRenamed, event: StoredEvent) -> None:
        self._change_conversation(payload.conversation_id, title=payload.title)

    def _conversation_deleted(self, payload: ConversationDeleted, event: StoredEvent) -> None:
        self._change_conversation(payload.conversation_id, deleted_at=payload.deleted_at)

    def _change_conversation(self, conversation_id: str, **values: Any) -> None:
        """Set columns of a conversation, in the buffer while its row waits there.

        Nothing else reads these columns while a batch is written, so a stored
        conversation is updated without writing the buffer first.
        """
        buffered = self._buffered.get((t.conversations, conversation_id))
        if buffered is not None:
            buffered.update(values)
            return
        self._conn.execute(
            update(t.conversations).where(t.conversations.c.id == conversation_id).values(values)
        )

    def _message_added(self, payload: MessageAdded, event: StoredEvent) -> None:
        self._pending[t.messages].append(row_of(payload.message))

    def _run_recorded(self, payload: RunCompleted | RunFailed, event: StoredEvent) -> None:
        self._pending[t.runs].append(row_of(payload.run))
        task_id = payload.run.metadata.get("annotation_task")
        if isinstance(task_id, str):
            self.flush()
            counter = "done" if isinstance(payload, RunCompleted) else "failed"
            column = t.annotation_tasks.c[counter]
            self._conn.execute(
                update(t.annotation_tasks)
                .where(t.annotation_tasks.c.id == task_id)
                .values({column: column + 1})
            )

    def _feedback_recorded(self, payload: FeedbackRecorded, event: StoredEvent) -> None:
        fb = payload.feedback
        if _rated(fb.run_id, fb.conversation_id) in self._retracting:
            self.flush()  # the rating it may replace is being retracted
        row = row_of(fb)
        row.update(superseded_by=None, retracted_at=None, current=True)
        if fb.user is not None:
            # The same person rating the same thing on the same key again
            # replaces their earlier rating; the old row stays as history. An
            # earlier rating still waiting in this batch is marked here; stored
            # ones are marked by one batched UPDATE when the batch is flushed.
            slot = _slot(row)
            earlier = self._pending_ratings.get(slot)
            if earlier is not None:
                earlier.update(superseded_by=fb.id, current=False)
            else:
                self._supersede_stored.append(
                    {
                        "p_run": fb.run_id,
                        "p_conversation": fb.conversation_id,
                        "p_key": fb.key,
                        "p_user": fb.user,
                        "p_new": fb.id,
                    }
                )
            self._pending_ratings[slot] = row
        self._pending[t.feedback].append(row)
        self._buffered[(t.feedback, fb.id)] = row
        queue_id = fb.metadata.get("queue_id")
        if fb.source == "annotator" and isinstance(queue_id, str) and fb.run_id and fb.user:
            self._pending[t.review_feedback].append(
                {
                    "feedback_id": fb.id,
                    "queue_id": queue_id,
                    "run_id": fb.run_id,
                    "reviewer": fb.user,
                    "created_at": fb.created_at,
                }
            )

    def _feedback_retracted(self, payload: FeedbackRetracted, event: StoredEvent) -> None:
        buffered = self._buffered.get((t.feedback, payload.feedback_id))
        if buffered is not None:
            # Retracted before it was written: it goes in retracted, as it would
            # after being written alone, and nothing counts it (never current when
            # stored). It no longer stands for its rater: a re-rating replaces
            # nothing of this batch's, only what is stored, as it would then.
            if buffered["retracted_at"] is None:
                buffered.update(retracted_at=payload.retracted_at, current=False)
            slot = _slot(buffered)
            if self._pending_ratings.get(slot) is buffered:
                del self._pending_ratings[slot]
            return
        stored = self._conn.execute(_RATED_BY, {"p_id": payload.feedback_id}).first()
        if stored is not None:
            self._retractions.append({"p_id": payload.feedback_id, "p_at": payload.retracted_at})
            self._retracting.add(_rated(*stored))

    def _comparison_recorded(self, payload: ComparisonRecorded, event: StoredEvent) -> None:
        comparison = payload.comparison
        if comparison.supersedes is not None:
            # The replaced comparison may be waiting in this batch.
            self.flush()
            self._conn.execute(
                update(t.comparisons)
                .where(
                    t.comparisons.c.id == comparison.supersedes,
                    t.comparisons.c.superseded_by.is_(None),
                )
                .values(superseded_by=comparison.id)
            )
        self._pending[t.comparisons].append(row_of(comparison))
        self._pending[t.comparison_runs].extend(
            {"comparison_id": comparison.id, "run_id": c.run_id, "position": i}
            for i, c in enumerate(comparison.candidates)
        )

    def _dataset_created(self, payload: DatasetCreated, event: StoredEvent) -> None:
        row = row_of(payload.dataset)
        row["version"] = 0
        self._pending[t.datasets].append(row)
        self._buffered[(t.datasets, row["id"])] = row

    def _dataset_item_added(self, payload: DatasetItemAdded, event: StoredEvent) -> None:
        item = payload.item
        if (t.datasets, item.dataset_id) in self._buffered:
            self.flush()  # the item reads its dataset's version
        if payload.new_version:
            version = self._conn.execute(
                update(t.datasets)
                .where(t.datasets.c.id == item.dataset_id)
                .values(version=t.datasets.c.version + 1)
                .returning(t.datasets.c.version)
            ).scalar_one_or_none()
        else:
            version = self._versions.get(item.dataset_id)
            if version is None:
                version = self._conn.execute(
                    select(t.datasets.c.version).where(t.datasets.c.id == item.dataset_id)
                ).scalar_one_or_none()
        if version is None:
            # Replayed logs were valid when written; an item for an unknown
            # dataset can only come from a bug, so refuse it loudly.
            raise LookupError(f"dataset {item.dataset_id} does not exist")
        self._versions[item.dataset_id] = version
        row = row_of(item)
        row["version"] = version
        self._pending[t.dataset_items].append(row)

    def _dataset_item_removed(self, payload: DatasetItemRemoved, event: StoredEvent) -> None:
        self.flush()
        removed = self._conn.execute(
            delete(t.dataset_items).where(
                t.dataset_items.c.id == payload.item_id,
                t.dataset_items.c.dataset_id == payload.dataset_id,
            )
        )
        if removed.rowcount:
            self._versions.pop(payload.dataset_id, None)
            self._conn.execute(
                update(t.datasets)
                .where(t.datasets.c.id == payload.dataset_id)
                .values(version=t.datasets.c.version + 1)
            )

    def _event_forgotten(self, payload: EventForgotten, event: StoredEvent) -> None:
        # Only what the original did to rows that were not the forgotten person's:
        # the dataset's version and the task's progress read as they did before.
        if payload.dataset_id is not None:
            self.flush()
            self._versions.pop(payload.dataset_id, None)
            self._conn.execute(
                update(t.datasets)
                .where(t.datasets.c.id == payload.dataset_id)
                .values(version=t.datasets.c.version + 1)
            )
        if payload.task_id is not None:
            self.flush()
            counter = "done" if payload.was == RunCompleted.type else "failed"
            column = t.annotation_tasks.c[counter]
            self._conn.execute(
                update(t.annotation_tasks)
                .where(t.annotation_tasks.c.id == payload.task_id)
                .values({column: column + 1})
            )

    def _feedback_config_set(self, payload: FeedbackConfigSet, event: StoredEvent) -> None:
        self.flush()
        c = t.feedback_configs.c
        where = and_(c.project == payload.project, c.key == payload.key)
        self._conn.execute(delete(t.feedback_configs).where(where))
        self._pending[t.feedback_configs].append(
            {
                "project": payload.project,
                "key": payload.key,
                "config": payload.config.model_dump(mode="json"),
                "updated_at": event.recorded_at,
            }
        )

    def _project_configured(self, payload: ProjectConfigured, event: StoredEvent) -> None:
        self.flush()
        self._conn.execute(
            update(t.projects)
            .where(t.projects.c.name == payload.project)
            .values(settings=payload.settings.model_dump(mode="json"))
        )

    def _review_queue_created(self, payload: ReviewQueueCreated, event: StoredEvent) -> None:
        self._pending[t.review_queues].append(row_of(payload.queue))

    def _annotation_task_created(self, payload: AnnotationTaskCreated, event: StoredEvent) -> None:
        task = payload.task
        self._pending[t.annotation_tasks].append(
            {
                "id": task.id,
                "project": task.project,
                "name": task.name,
                "queue_id": task.queue_id,
                "models": list(task.models),
                "prompt_count": len(task.prompts),
                "total": task.total,
                "done": 0,
                "failed": 0,
                "created_by": task.created_by,
                "created_at": task.created_at,
            }
        )

    def _audit_recorded(self, payload: AuditRecorded, event: StoredEvent) -> None:
        """Audits live in the log only: ``tuneback events --type audit.recorded`` reads them."""


def _slot(row: dict[str, Any]) -> tuple[Any, ...]:
    """Whose rating of what a rating row is: one person's current rating of an answer
    (or of a conversation) on one key."""
    target = row["run_id"] or f"conversation:{row['conversation_id']}"
    return (row["project"], target, row["key"], row["user"])


def _rated(run_id: str | None, conversation_id: str | None) -> tuple[str, str]:
    """What a rating rates: its run, or its conversation when it rates no run."""
    if run_id is not None:
        return ("run", run_id)
    return ("conversation", conversation_id or "")


def lock_keys(payload: EventPayload, runs_rated: Mapping[str, str]) -> list[str]:
    """The rows an event's projection reads and then changes, named for a narrow lock.

    Two writers touching the same one wait for each other; everything else
    commits side by side. ``runs_rated`` maps retracted feedback to the run it
    rates (:func:`runs_rated_by`).
    """
    if isinstance(payload, FeedbackRecorded):
        # A run's rollups count it as rated or not by all its ratings together.
        fb = payload.feedback
        keys = [] if fb.run_id is None else [f"rated:{fb.run_id}"]
        if fb.user is not None:
            target = fb.run_id or f"conversation:{fb.conversation_id}"
            keys.append(f"rating:{target}:{fb.key}:{fb.user}")
        return keys
    if isinstance(payload, FeedbackRetracted):
        # Taking a rating back may leave its run unrated: the run's lock, as a rating takes.
        run_id = runs_rated.get(payload.feedback_id)
        return [f"feedback:{payload.feedback_id}", *([f"rated:{run_id}"] if run_id else [])]
    if isinstance(payload, DatasetItemAdded):
        return [f"dataset:{payload.item.dataset_id}"]
    if isinstance(payload, DatasetItemRemoved):
        return [f"dataset:{payload.dataset_id}"]
    if isinstance(payload, FeedbackConfigSet):
        return [f"config:{payload.project}:{payload.key}"]
    if isinstance(payload, ProjectConfigured):
        return [f"settings:{payload.project}"]
    if isinstance(payload, ConversationEnded | ConversationRenamed | ConversationDeleted):
        return [f"conversation:{payload.conversation_id}"]
    return []


def runs_rated_by(conn: Connection, payloads: Iterable[EventPayload]) -> dict[str, str]:
    """The run each retracted rating among ``payloads`` rates (a rating's run never changes)."""
    retracted = [p.feedback_id for p in payloads if isinstance(p, FeedbackRetracted)]
    if not retracted:
        return {}
    found = select(_fb.id, _fb.run_id).where(_fb.id.in_(retracted), _fb.run_id.is_not(None))
    return {row.id: row.run_id for row in conn.execute(found)}


def rating_taken(conn: Connection, feedback: Feedback) -> bool:
    """Whether the rater already holds a current rating on this key of this answer."""
    target = (
        _fb.run_id == feedback.run_id
        if feedback.run_id is not None
        else and_(_fb.run_id.is_(None), _fb.conversation_id == feedback.conversation_id)
    )
    query = select(_fb.id).where(
        target, _fb.key == feedback.key, _fb.user == feedback.user, _fb.current.is_(True)
    )
    return conn.execute(query.limit(1)).first() is not None


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
