"""The SQL behind review queues: which runs a queue holds, leases, skips, progress.

A queue's items are the runs its rule matches now plus the runs already
reviewed in it (so an item stays after a review made it stop matching, e.g.
"no feedback yet"). That membership is stored in ``review_members`` and kept by
the projector as runs and feedback arrive (see ``review_membership.py``), so
counts and the next item are index reads at any size. Leases and skips live in
plain tables outside the event log (see ``tables.py``); taking a lease is one
``INSERT … ON CONFLICT DO UPDATE … WHERE`` that only overwrites an expired
lease or the reviewer's own, atomic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    exists,
    func,
    or_,
    select,
)

from tuneback.domain import (
    AnnotationTask,
    FeedbackRecord,
    ItemStatus,
    ReviewQueue,
    Run,
)
from tuneback.domain.review import item_status
from tuneback.errors import NotFoundError
from tuneback.storage import tables as t
from tuneback.storage.criteria import has_tag, run_conditions
from tuneback.storage.rows import feedback_from_row
from tuneback.storage.store import Store

_runs = t.runs.c
_fb = t.feedback.c
_rf = t.review_feedback.c
_leases = t.review_leases.c
_skips = t.review_skips.c
_members = t.review_members.c


@dataclass(frozen=True)
class QueueCounts:
    """How far a queue is: items by status, and who did what."""

    total: int
    pending: int
    needs_more: int
    completed: int
    reviewed_by: dict[str, int]
    skipped_by: dict[str, int]
    holding: dict[str, str]
    """Reviewer → the run they hold a live lease on."""


@dataclass(frozen=True)
class QueueItem:
    run: Run
    reviews: int
    status: ItemStatus
    leased_by: str | None


@dataclass(frozen=True)
class TaskProgress:
    id: str
    project: str
    name: str
    queue_id: str
    models: list[str]
    prompt_count: int
    total: int
    done: int
    failed: int
    created_by: str | None
    created_at: datetime

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def complete(self) -> bool:
        return self.finished >= self.total


class ReviewStore:
    """Reads and coordination writes for review queues, on a store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- queues -------------------------------------------------------------------

    def get_queue(self, queue_id: str) -> ReviewQueue:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.review_queues).where(t.review_queues.c.id == queue_id))
            found = row.mappings().first()
        if found is None:
            raise NotFoundError(f"no review queue with id {queue_id}")
        return ReviewQueue.model_validate(dict(found))

    def list_queues(self, project: str) -> list[ReviewQueue]:
        q = t.review_queues.c
        query = select(t.review_queues).where(q.project == project).order_by(q.created_at.desc())
        with self.engine.connect() as conn:
            return [ReviewQueue.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    # -- which runs are in a queue ------------------------------------------------------

    def rule_matches(self, queue: ReviewQueue) -> list[str]:
        """The runs the queue's rule matches now, read from the runs themselves."""
        query = select(_runs.id).where(*run_conditions(queue.rule.criteria(queue.project)))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(_runs.id)).scalars())

    def candidates(
        self, queue: ReviewQueue, reviewer: str, now: datetime, *, limit: int = 20
    ) -> list[str]:
        """Runs this reviewer could be served next, oldest first.

        Left out: completed items, ones they reviewed or skipped, and ones
        someone else holds a live lease on.
        """
        mine = exists().where(
            _rf.queue_id == queue.id, _rf.run_id == _members.run_id, _rf.reviewer == reviewer
        )
        skipped = exists().where(
            _skips.queue_id == queue.id,
            _skips.run_id == _members.run_id,
            _skips.reviewer == reviewer,
        )
        held = exists().where(
            _leases.queue_id == queue.id,
            _leases.run_id == _members.run_id,
            _leases.reviewer != reviewer,
            _leases.expires_at > now,
        )
        query = (
            select(_members.run_id)
            .where(_members.queue_id == queue.id, _members.done.is_(False), ~mine, ~skipped, ~held)
            .order_by(_members.created_at, _members.run_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # -- leases and skips ---------------------------------------------------------

    def held_by(self, queue_id: str, reviewer: str, now: datetime) -> list[str]:
        """Runs ``reviewer`` holds a live lease on in this queue, oldest lease first."""
        query = (
            select(_leases.run_id)
            .where(
                _leases.queue_id == queue_id,
                _leases.reviewer == reviewer,
                _leases.expires_at > now,
            )
            .order_by(_leases.leased_at)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def lease(
        self,
        queue: ReviewQueue,
        run_id: str,
        reviewer: str,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Reserve the item for ``reviewer``; False when someone else holds it or it needs no one.

        The insert overwrites only an expired lease or the reviewer's own, and
        the check that the item still needs this reviewer runs in the same
        transaction, after the lease is taken: a review that landed meanwhile
        is seen and the lease is given back.
        """
        values = {
            "queue_id": queue.id,
            "run_id": run_id,
            "reviewer": reviewer,
            "leased_at": now,
            "expires_at": expires_at,
        }
        table = t.review_leases
        insert: Any = self.store.database.dialect.insert(table)
        statement = (
            insert.values(values)
            .on_conflict_do_update(
                index_elements=[_leases.queue_id, _leases.run_id],
                set_={
                    "reviewer": reviewer,
                    "leased_at": now,
                    "expires_at": expires_at,
                },
                where=or_(_leases.expires_at <= now, _leases.reviewer == reviewer),
            )
            .returning(_leases.reviewer)
        )
        with self.store.database.writing() as conn:
            if conn.execute(statement).first() is None:
                return False
            reviewers = set(
                conn.execute(
                    select(_rf.reviewer)
                    .where(_rf.queue_id == queue.id, _rf.run_id == run_id)
                    .distinct()
                ).scalars()
            )
            if reviewer in reviewers or len(reviewers) >= queue.reviewers_per_item:
                conn.execute(self._delete_lease(queue.id, run_id, reviewer))
                return False
        return True

    @staticmethod
    def _delete_lease(queue_id: str, run_id: str, reviewer: str) -> Any:
        return delete(t.review_leases).where(
            _leases.queue_id == queue_id, _leases.run_id == run_id, _leases.reviewer == reviewer
        )

    def release(self, queue_id: str, run_id: str, reviewer: str) -> None:
        with self.store.database.writing() as conn:
            conn.execute(self._delete_lease(queue_id, run_id, reviewer))

    def lease_holder(self, queue_id: str, run_id: str, now: datetime) -> str | None:
        query = select(_leases.reviewer).where(
            _leases.queue_id == queue_id, _leases.run_id == run_id, _leases.expires_at > now
        )
        with self.engine.connect() as conn:
            holder = conn.execute(query).scalar_one_or_none()
        return None if holder is None else str(holder)

    def skip(self, queue_id: str, run_id: str, reviewer: str, now: datetime) -> None:
        """Never serve this item to this reviewer again, and free it for the others."""
        table = t.review_skips
        insert: Any = self.store.database.dialect.insert(table)
        row = {"queue_id": queue_id, "run_id": run_id, "reviewer": reviewer, "skipped_at": now}
        with self.store.database.writing() as conn:
            conn.execute(insert.values(row).on_conflict_do_nothing())
            conn.execute(self._delete_lease(queue_id, run_id, reviewer))

    # -- what reviewers answered -------------------------------------------------------

    def reviewers_of(self, queue_id: str, run_id: str) -> set[str]:
        query = (
            select(_rf.reviewer).where(_rf.queue_id == queue_id, _rf.run_id == run_id).distinct()
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def answers(self, queue_id: str, run_ids: Sequence[str] | None = None) -> list[FeedbackRecord]:
        """Feedback given in the queue (retracted left out), oldest first."""
        query = (
            select(t.feedback)
            .join(t.review_feedback, _rf.feedback_id == _fb.id)
            .where(_rf.queue_id == queue_id, _fb.retracted_at.is_(None))
            .order_by(_fb.created_at, _fb.id)
        )
        if run_ids is not None:
            query = query.where(_rf.run_id.in_(list(run_ids)))
        with self.engine.connect() as conn:
            return [feedback_from_row(r) for r in conn.execute(query).mappings()]

    # -- progress -----------------------------------------------------------------

    def counts(self, queue: ReviewQueue, now: datetime) -> QueueCounts:
        # Two ranges of the (queue, reviews) index: the unreviewed items only counted
        # (most of a big queue, and a bare count of a range is the cheapest read of
        # it), the reviewed ones by how many reviews they have; done is reviews >= needed.
        mine = _members.queue_id == queue.id
        unreviewed = select(func.count()).where(mine, _members.reviews == 0)
        reviewed = (
            select(_members.reviews, func.count())
            .where(mine, _members.reviews > 0)
            .group_by(_members.reviews)
        )
        by_reviewer = (
            select(_rf.reviewer, func.count(func.distinct(_rf.run_id)))
            .where(_rf.queue_id == queue.id)
            .group_by(_rf.reviewer)
        )
        skips = (
            select(_skips.reviewer, func.count())
            .where(_skips.queue_id == queue.id)
            .group_by(_skips.reviewer)
        )
        leases = select(_leases.reviewer, _leases.run_id).where(
            _leases.queue_id == queue.id, _leases.expires_at > now
        )
        with self.engine.connect() as conn:
            pending = int(conn.execute(unreviewed).scalar_one())
            by_reviews = [(int(n), int(items)) for n, items in conn.execute(reviewed)]
            total = pending + sum(items for _, items in by_reviews)
            completed = sum(items for n, items in by_reviews if n >= queue.reviewers_per_item)
            reviewed_by = {row[0]: int(row[1]) for row in conn.execute(by_reviewer)}
            skipped_by = {row[0]: int(row[1]) for row in conn.execute(skips)}
            holding = {row[0]: row[1] for row in conn.execute(leases)}
        return QueueCounts(
            total=total,
            pending=pending,
            needs_more=total - pending - completed,
            completed=completed,
            reviewed_by=reviewed_by,
            skipped_by=skipped_by,
            holding=holding,
        )

    def items(
        self, queue: ReviewQueue, now: datetime, *, limit: int = 50, offset: int = 0
    ) -> list[QueueItem]:
        """The queue's items, unfinished ones first, each oldest first."""
        holder = (
            select(_leases.reviewer)
            .where(
                _leases.queue_id == queue.id,
                _leases.run_id == _members.run_id,
                _leases.expires_at > now,
            )
            .scalar_subquery()
            .label("leased_by")
        )
        query = (
            select(t.runs, _members.reviews, holder)
            .select_from(t.review_members)
            .join(t.runs, _runs.id == _members.run_id)
            .where(_members.queue_id == queue.id)
            .order_by(_members.done, _members.created_at, _members.run_id)
            .limit(limit)
            .offset(offset)
        )
        found = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                data = dict(row)
                count = int(data.pop("reviews"))
                leased_by = data.pop("leased_by")
                found.append(
                    QueueItem(
                        run=Run.model_validate(data),
                        reviews=count,
                        status=item_status(count, queue.reviewers_per_item),
                        leased_by=leased_by,
                    )
                )
        return found

    # -- annotation tasks ---------------------------------------------------------------

    def task_progress(self, task_id: str) -> TaskProgress:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.annotation_tasks).where(t.annotation_tasks.c.id == task_id)
            ).mappings()
            found = row.first()
        if found is None:
            raise NotFoundError(f"no annotation task with id {task_id}")
        return TaskProgress(**dict(found))

    def list_tasks(self, project: str) -> list[TaskProgress]:
        a = t.annotation_tasks.c
        query = select(t.annotation_tasks).where(a.project == project).order_by(a.created_at.desc())
        with self.engine.connect() as conn:
            return [TaskProgress(**dict(r)) for r in conn.execute(query).mappings()]

    def get_task(self, task_id: str) -> AnnotationTask:
        """The task as created, prompts and all, read back from its event."""
        e = t.events.c
        query = (
            select(t.events.c.id)
            .where(e.type == "annotation_task.created")
            .where(self._payload_task_id() == task_id)
        )
        with self.engine.connect() as conn:
            event_id = conn.execute(query).scalar_one_or_none()
        if event_id is None:
            raise NotFoundError(f"no annotation task with id {task_id}")
        event = self.store.get_event(event_id)
        task = getattr(event.payload, "task", None)
        assert isinstance(task, AnnotationTask)
        return task

    def _payload_task_id(self) -> ColumnElement[Any]:
        return self.store.database.dialect.json_text(t.events.c.payload, "task", "id")

    def task_runs(self, task: AnnotationTask, tag: str) -> list[Run]:
        query = select(t.runs).where(_runs.project == task.project, has_tag(tag))
        with self.engine.connect() as conn:
            return [Run.model_validate(dict(r)) for r in conn.execute(query).mappings()]
