"""Forgetting an end user: their data leaves every table and the log's readable history.

What belongs to a user called NAME (in one project, or in all):

- the conversations they started, with every message and every run in them;
- the runs logged with ``user = NAME``, and the steps under those runs (child runs);
- the feedback they gave, and all feedback on their runs and conversations
  (a comment or correction on someone's answer quotes or answers it);
- the comparisons they made, and every comparison with one of their runs as a
  candidate (its prompt is their prompt);
- dataset items copied from their runs (``source_run_id``), removed ones too;
- what points at their runs outside the log: review leases and skips.

Review queues and annotation tasks are rules and prompt sets written by the
team, not by the user, so they stay; so do datasets themselves.

Each of the user's events is rewritten in place into an ``event.forgotten``
tombstone (same ``seq``, id, project and time; no content), and their rows are
deleted from the projections, in one transaction that holds the log's tail the
way every writer and ``rebuild`` do, so no write interleaves. The log is read
once beforehand without holding anything; under the tail only the events since
are read, so writers wait for the rewrite, not for a scan of the whole log. (On
PostgreSQL a short further pass follows, for a write that was in flight: see
:func:`forget_user`.)

The tombstone keeps the counters the original moved on other rows (a dataset's
version, a task's progress), so the projections after forgetting are exactly
what a rebuild of the rewritten log produces. On SQLite the rewrite runs with
``secure_delete`` and the write-ahead log is truncated afterwards, so the old
bytes do not linger in free pages; on PostgreSQL the touched tables are
vacuumed. Copies outside this database (backups, exported files, followers
that already read the events) are out of its reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)

from tuneback.domain import EventForgotten, RunCompleted, RunFailed, encode_payload, utcnow
from tuneback.errors import NotFoundError
from tuneback.storage import tables as t
from tuneback.storage.engine import WRITE_OPTION, Dialect, EncodedJson
from tuneback.storage.review_membership import after_removal, runs_rated_by
from tuneback.storage.rollups import RollupChanges, runs_of_conversations, runs_of_feedback

CHUNK = 500
SCAN_PAGE = 2_000
SWEEPS = 3
"""Further passes on PostgreSQL, for writes that were in flight during the first."""

# The event types that can carry a user's data; everything else (configs,
# queues, tasks, datasets, audits, tombstones) is left as it is.
_SCANNED = (
    "conversation.started",
    "conversation.ended",
    "conversation.renamed",
    "conversation.deleted",
    "message.added",
    RunCompleted.type,
    RunFailed.type,
    "feedback.recorded",
    "feedback.retracted",
    "comparison.recorded",
    "dataset.item_added",
    "dataset.item_removed",
)

_REWRITE = (
    update(t.events)
    .where(t.events.c.id == bindparam("b_id"))
    .values(
        type=bindparam("b_type"), version=bindparam("b_version"), payload=bindparam("b_payload")
    )
)


@dataclass
class ForgetCounts:
    """What forgetting removed: rows per kind of thing, and events turned into tombstones."""

    conversations: int = 0
    messages: int = 0
    runs: int = 0
    feedback: int = 0
    comparisons: int = 0
    dataset_items: int = 0
    events: int = 0

    def add(self, other: ForgetCounts) -> None:
        for name, count in other.as_dict().items():
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        return {
            "conversations": self.conversations,
            "messages": self.messages,
            "runs": self.runs,
            "feedback": self.feedback,
            "comparisons": self.comparisons,
            "dataset_items": self.dataset_items,
            "events": self.events,
        }


_DISCOVERED = ("conversations", "messages", "runs", "feedback", "comparisons")
"""The kinds of ids found in the projections (dataset items are found in the log)."""


@dataclass
class _Owned:
    """The ids of everything that belongs to the user."""

    conversations: set[str] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    feedback: set[str] = field(default_factory=set)
    comparisons: set[str] = field(default_factory=set)
    dataset_items: set[str] = field(default_factory=set)


def forget_user(engine: Engine, name: str, project: str | None) -> tuple[ForgetCounts, set[str]]:
    """Forget ``name`` (in ``project``, or everywhere); returns the counts and removed run ids.

    Raises :class:`NotFoundError`, changing nothing, when the user has no data.
    """
    forgetting = _Forgetting(name, project)
    dialect = Dialect.of(engine)
    with engine.connect() as conn:
        with dialect.erasing(conn):
            # The whole log is read first without holding anything, so writers
            # wait only while the few events since are read and the rows change.
            with conn.execution_options(**{WRITE_OPTION: False}).begin():
                forgetting.read(conn)
            writing = conn.execution_options(**{WRITE_OPTION: True})
            forgetting.run(writing, first=True)
            if dialect.writers_overlap:
                # A writer may have applied its projections, writing a row about
                # this user that the pass could not see, and commit it right
                # after. Such writers queued ahead of the next pass, which looks
                # again with every id found so far.
                for _ in range(SWEEPS):
                    if not forgetting.run(writing, first=False):
                        break
        dialect.reclaim(conn, _REWRITTEN)
    return forgetting.counts, forgetting.owned.runs


class _Forgetting:
    """One forget, in passes: the ids found so far and how far the log was read."""

    def __init__(self, name: str, project: str | None) -> None:
        self.name = name
        self.project = project
        self.owned = _Owned()
        self.counts = ForgetCounts()
        self.present: set[str] = set()
        """The user's dataset items in their datasets, as of where the log was read to."""
        self.read_to = 0
        self.pending: dict[str, dict[str, Any]] = {}
        """Tombstones made but not yet written, by event id."""
        self._known = 0

    def read(self, conn: Connection) -> None:
        """Find the user's rows and read the log on to its end, making tombstones."""
        last = int(conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0))).scalar_one())
        self._discover(conn)
        known = sum(map(len, (vars(self.owned)[k] for k in _DISCOVERED)))
        if known != self._known:
            # A new id may be named by an event already read (feedback can come
            # before the run it rates): read the whole log again. Tombstones
            # already written are not read again, and the items' presence is
            # replayed in log order, so what was found before stays right.
            self.read_to = 0
            self._known = known
        self._tombstones(conn, last)

    def run(self, conn: Connection, *, first: bool) -> bool:
        """One pass, in one transaction at the log's tail; whether it removed anything."""
        with conn.begin():
            Dialect.of(conn).hold_projections(conn)
            self.read(conn)
            tombstones = list(self.pending.values())
            if first and not tombstones and not any(vars(self.owned).values()):
                where = f" in project {self.project}" if self.project is not None else ""
                raise NotFoundError(f"no data for user {self.name!r}{where}: nothing to forget")
            for start in range(0, len(tombstones), CHUNK):
                conn.execute(_REWRITE, tombstones[start : start + CHUNK])
            removed = _delete_rows(conn, self.owned)
            removed.events = len(tombstones)
        self.pending.clear()
        self.counts.add(removed)
        return any(removed.as_dict().values())

    def _discover(self, conn: Connection) -> None:
        """Add the ids of every row of the user's that the projections hold."""
        owned, name, project = self.owned, self.name, self.project

        def scoped(table: Table, *where: Any) -> Any:
            query = select(table.c.id).where(*where)
            return query.where(table.c.project == project) if project is not None else query

        c, r, f = t.conversations.c, t.runs.c, t.feedback.c
        owned.conversations |= set(conn.execute(scoped(t.conversations, c.user == name)).scalars())
        owned.runs |= set(conn.execute(scoped(t.runs, r.user == name)).scalars())
        owned.runs |= _ids_where(conn, r.id, r.conversation_id, owned.conversations)
        frontier = set(owned.runs)
        while frontier:  # the steps of a traced chain hang under its root run
            frontier = _ids_where(conn, r.id, r.parent_run_id, frontier) - owned.runs
            owned.runs |= frontier
        m = t.messages.c
        owned.messages |= _ids_where(conn, m.id, m.conversation_id, owned.conversations)
        owned.messages |= _ids_where(conn, m.id, m.run_id, owned.runs)
        owned.feedback |= set(conn.execute(scoped(t.feedback, f.user == name)).scalars())
        owned.feedback |= _ids_where(conn, f.id, f.run_id, owned.runs)
        owned.feedback |= _ids_where(conn, f.id, f.conversation_id, owned.conversations)
        cmp = t.comparisons.c
        owned.comparisons |= set(conn.execute(scoped(t.comparisons, cmp.user == name)).scalars())
        cr = t.comparison_runs.c
        owned.comparisons |= _ids_where(conn, cr.comparison_id, cr.run_id, owned.runs)

    def _tombstones(self, conn: Connection, last: int) -> None:
        """Read the log on to ``last``; a tombstone for every event holding the user's data.

        Dataset items are found here rather than in the projection: an item that
        was removed since still carries the user's text in its ``item_added`` event.
        """
        owned, present = self.owned, self.present
        forgotten_at = utcnow()
        for row in _scan(conn, self.project, self.read_to, last):
            data = row.payload
            was = row.type
            dataset_id: str | None = None
            task_id: str | None = None
            if was == "conversation.started":
                mine = data["conversation"]["id"] in owned.conversations
            elif was in ("conversation.ended", "conversation.renamed", "conversation.deleted"):
                mine = data["conversation_id"] in owned.conversations
            elif was == "message.added":
                mine = data["message"]["id"] in owned.messages
            elif was in (RunCompleted.type, RunFailed.type):
                mine = data["run"]["id"] in owned.runs
                task = (data["run"].get("metadata") or {}).get("annotation_task")
                task_id = task if mine and isinstance(task, str) else None
            elif was == "feedback.recorded":
                mine = data["feedback"]["id"] in owned.feedback
            elif was == "feedback.retracted":
                mine = data["feedback_id"] in owned.feedback
            elif was == "comparison.recorded":
                mine = data["comparison"]["id"] in owned.comparisons
            elif was == "dataset.item_added":
                item = data["item"]
                mine = item.get("source_run_id") in owned.runs
                if mine:
                    owned.dataset_items.add(item["id"])
                    present.add(item["id"])
                    # Only the first item of a bulk add moved the version.
                    if data.get("new_version", True):
                        dataset_id = item["dataset_id"]
            else:  # dataset.item_removed
                mine = data["item_id"] in owned.dataset_items
                if mine and data["item_id"] in present:
                    # Removing a present item moved the version; an absent one did not.
                    present.discard(data["item_id"])
                    dataset_id = data["dataset_id"]
            if not mine:
                continue
            tombstone = EventForgotten(
                project=row.project,
                was=was,
                forgotten_at=forgotten_at,
                dataset_id=dataset_id,
                task_id=task_id,
            )
            self.pending[row.id] = {
                "b_id": row.id,
                "b_type": tombstone.type,
                "b_version": tombstone.version,
                "b_payload": EncodedJson(encode_payload(tombstone)),
            }
        self.read_to = last


def _scan(conn: Connection, project: str | None, after: int, last: int) -> Iterator[Any]:
    """The events after ``after`` up to ``last`` whose type can hold a user's data."""
    e = t.events.c
    while True:
        query = (
            select(e.seq, e.id, e.type, e.project, e.payload)
            .where(e.seq > after, e.seq <= last, e.type.in_(_SCANNED))
            .order_by(e.seq)
            .limit(SCAN_PAGE)
        )
        if project is not None:
            query = query.where(e.project == project)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def _delete_rows(conn: Connection, owned: _Owned) -> ForgetCounts:
    # The dashboard's rollups lose what the removed rows gave them, and runs
    # left in a removed conversation move to the system prompt they sent.
    touched = set(owned.runs)
    touched |= runs_of_feedback(conn, owned.feedback)
    touched |= runs_of_conversations(conn, owned.conversations)
    changes = RollupChanges()
    with changes.around(conn, touched):
        counts = _delete_owned(conn, owned)
    changes.write(conn)
    return counts


def _delete_owned(conn: Connection, owned: _Owned) -> ForgetCounts:
    counts = ForgetCounts()
    rated = runs_rated_by(conn, owned.feedback)
    counts.conversations = _delete(conn, t.conversations.c.id, owned.conversations)
    counts.messages = _delete(conn, t.messages.c.id, owned.messages)
    counts.runs = _delete(conn, t.runs.c.id, owned.runs)
    counts.feedback = _delete(conn, t.feedback.c.id, owned.feedback)
    _delete(conn, t.review_feedback.c.feedback_id, owned.feedback)
    counts.comparisons = _delete(conn, t.comparisons.c.id, owned.comparisons)
    _delete(conn, t.comparison_runs.c.comparison_id, owned.comparisons)
    counts.dataset_items = _delete(conn, t.dataset_items.c.id, owned.dataset_items)
    _delete(conn, t.review_leases.c.run_id, owned.runs)
    _delete(conn, t.review_skips.c.run_id, owned.runs)
    after_removal(conn, owned.runs, rated)
    return counts


def _ids_where(
    conn: Connection, wanted: Column[Any], key: Column[Any], values: set[str]
) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(values):
        found.update(conn.execute(select(wanted).where(key.in_(chunk))).scalars())
    return found


def _delete(conn: Connection, key: Column[Any], values: set[str]) -> int:
    removed = 0
    for chunk in _chunks(values):
        removed += conn.execute(delete(key.table).where(key.in_(chunk))).rowcount
    return removed


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


_REWRITTEN = (
    t.events,
    t.conversations,
    t.messages,
    t.runs,
    t.feedback,
    t.comparisons,
    t.dataset_items,
)
"""The tables whose old row versions may still hold what was forgotten."""
