"""Review queue membership, kept in ``review_members`` as events are projected.

A queue holds the runs its rule matches now and the runs already reviewed in
it (an item stays after a review made it stop matching, e.g. "no feedback
yet"). The rule is read once per event batch, as SQL through
:func:`tuneback.storage.criteria.run_conditions`, over just the runs the batch
touched: a new run, or a run whose feedback changed. A reviewer's first answer
on an item adds one to its ``reviews`` with an upsert, which on PostgreSQL
takes the row's lock, so two reviewers answering at once both count.

A new queue starts with every run its rule matches (which is also how a
rebuild fills it, replaying the log); from then on :class:`MembershipChanges`
keeps it in the event's own transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, false, func, literal, select

from tuneback.domain import (
    EventPayload,
    FeedbackRecorded,
    FeedbackRetracted,
    ReviewQueue,
    ReviewQueueCreated,
    RunCompleted,
    RunFailed,
)
from tuneback.storage import tables as t
from tuneback.storage.criteria import run_conditions
from tuneback.storage.engine import Dialect

_members = t.review_members.c
_runs = t.runs.c
_rf = t.review_feedback.c
CHUNK = 500
"""Run ids per statement: well under every driver's limit on bound parameters."""


def _insert(conn: Connection) -> Any:
    return Dialect.of(conn).insert(t.review_members)


def _matching(queues: Sequence[ReviewQueue], run_ids: Sequence[str] | None) -> Any:
    """(queue, run) rows for the runs matching the rule these queues share."""
    q = t.review_queues.c
    where = run_conditions(queues[0].rule.criteria(queues[0].project))
    if run_ids is not None:
        where.append(_runs.id.in_(list(run_ids)))
    return (
        select(
            q.id.label("queue_id"),
            _runs.id.label("run_id"),
            _runs.created_at,
            literal(0).label("reviews"),
            false().label("done"),
        )
        .select_from(t.runs)
        .join(t.review_queues, q.id.in_([queue.id for queue in queues]))
        .where(*where)
    )


def _add_matching(
    conn: Connection, queues: Sequence[ReviewQueue], run_ids: Sequence[str] | None
) -> None:
    columns = ["queue_id", "run_id", "created_at", "reviews", "done"]
    statement = _insert(conn).from_select(columns, _matching(queues, run_ids))
    conn.execute(statement.on_conflict_do_nothing(index_elements=["queue_id", "run_id"]))


def refresh_runs(
    conn: Connection, queues: Sequence[ReviewQueue], run_ids: Sequence[str], *, rated: bool
) -> None:
    """Add the runs among ``run_ids`` the rule matches now; drop unreviewed ones it no longer does.

    ``queues`` share one rule, so each statement serves them all. ``rated``:
    the runs' feedback (or reviews) changed, so some may have stopped matching;
    new runs only ever join.
    """
    ids = [queue.id for queue in queues]
    for start in range(0, len(run_ids), CHUNK):
        chunk = list(run_ids[start : start + CHUNK])
        if rated:
            still = _matching(queues[:1], chunk).with_only_columns(_runs.id)
            conn.execute(
                delete(t.review_members).where(
                    _members.queue_id.in_(ids),
                    _members.run_id.in_(chunk),
                    _members.reviews == 0,
                    _members.run_id.not_in(still.scalar_subquery()),
                )
            )
        _add_matching(conn, queues, chunk)


def _by_rule(queues: Iterable[ReviewQueue]) -> list[list[ReviewQueue]]:
    """Queues gathered by the runs they select (same project, same criteria)."""
    groups: dict[Any, list[ReviewQueue]] = defaultdict(list)
    for queue in queues:
        groups[queue.rule.criteria(queue.project)].append(queue)
    return list(groups.values())


def _count_earlier_reviews(conn: Connection, queue: ReviewQueue, batch: Sequence[str]) -> None:
    """Count reviews stored before their queue was (bulk loads, odd clients).

    ``batch``: this batch's answers in the queue, counted with the others
    afterwards. A queue without earlier reviews (the usual case) costs one
    indexed look.
    """
    here = and_(_rf.queue_id == queue.id, _rf.feedback_id.not_in(list(batch)))
    if conn.execute(select(_rf.feedback_id).where(here).limit(1)).first() is None:
        return
    mine = _members.queue_id == queue.id
    reviewers = func.count(func.distinct(_rf.reviewer))
    counted = select(reviewers).where(here, _rf.run_id == _members.run_id).scalar_subquery()
    conn.execute(
        t.review_members.update()
        .where(mine, _members.run_id.in_(select(_rf.run_id).where(here)))
        .values(reviews=counted)
    )
    # Runs reviewed here that the rule does not match are in the queue too.
    unmatched = (
        select(literal(queue.id), _rf.run_id, _runs.created_at, reviewers, false())
        .select_from(t.review_feedback.join(t.runs, _runs.id == _rf.run_id))
        .where(here, _rf.run_id.not_in(select(_members.run_id).where(mine)))
        .group_by(_rf.run_id, _runs.created_at)
    )
    columns = ["queue_id", "run_id", "created_at", "reviews", "done"]
    conn.execute(t.review_members.insert().from_select(columns, unmatched))
    conn.execute(
        t.review_members.update()
        .where(mine, _members.reviews > 0)
        .values(done=_members.reviews >= queue.reviewers_per_item)
    )


def _count_reviews(conn: Connection, queue: ReviewQueue, run_id: str, reviews: int) -> None:
    """Add ``reviews`` new reviewers to the item (the item joins the queue if it was not in)."""
    needed = queue.reviewers_per_item
    created = select(_runs.created_at).where(_runs.id == run_id).scalar_subquery()
    statement = _insert(conn).values(
        queue_id=queue.id,
        run_id=run_id,
        created_at=created,
        reviews=reviews,
        done=reviews >= needed,
    )
    total = _members.reviews + reviews
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["queue_id", "run_id"],
            set_={"reviews": total, "done": total >= needed},
        )
    )


class MembershipChanges:
    """What one batch of events changes in queue membership, written at the batch's end."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._new_queues: list[ReviewQueue] = []
        self._new_runs: dict[str, set[str]] = defaultdict(set)
        self._rated_runs: dict[str, set[str]] = defaultdict(set)
        self._retracted: list[str] = []
        self._answers: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        """(queue, run) → this batch's answers there: feedback id → reviewer."""

    def note(self, payload: EventPayload) -> None:
        if isinstance(payload, ReviewQueueCreated):
            self._new_queues.append(payload.queue)
        elif isinstance(payload, RunCompleted | RunFailed):
            self._new_runs[payload.run.project].add(payload.run.id)
        elif isinstance(payload, FeedbackRecorded) and payload.feedback.run_id is not None:
            fb = payload.feedback
            self._rated_runs[fb.project].add(fb.run_id or "")
            queue_id = fb.metadata.get("queue_id")
            if fb.source == "annotator" and isinstance(queue_id, str) and fb.user:
                self._answers[(queue_id, fb.run_id or "")][fb.id] = fb.user
        elif isinstance(payload, FeedbackRetracted):
            self._retracted.append(payload.feedback_id)

    def write(self, conn: Connection) -> None:
        """Bring membership up to date with this batch (after its rows are written)."""
        if self._retracted:
            f = t.feedback.c
            rows = conn.execute(
                select(f.project, f.run_id).where(f.id.in_(self._retracted), f.run_id.is_not(None))
            )
            for project, run_id in rows:
                self._rated_runs[project].add(run_id)
        # A new queue starts with every run its rule matches now; its reviews
        # (none, unless given in this batch) are counted with the others below.
        for group in _by_rule(self._new_queues):
            _add_matching(conn, group, None)
        for queue in self._new_queues:
            answers = self._answers.items()
            batch = [i for (q, _), given in answers if q == queue.id for i in given]
            _count_earlier_reviews(conn, queue, batch)
        fresh = {queue.id for queue in self._new_queues}
        projects = set(self._new_runs) | set(self._rated_runs)
        queues = [q for q in _queues_of(conn, projects) if q.id not in fresh]
        for group in _by_rule(queues):
            new = self._new_runs.get(group[0].project, set())
            rated = self._rated_runs.get(group[0].project, set())
            if not group[0].rule.criteria(group[0].project).reads_feedback():
                # Feedback cannot change what this rule matches.
                rated = set()
            if new - rated:
                refresh_runs(conn, group, sorted(new - rated), rated=False)
            if rated:
                refresh_runs(conn, group, sorted(rated), rated=True)
        self._write_answers(conn)
        self._clear()

    def _write_answers(self, conn: Connection) -> None:
        if not self._answers:
            return
        by_id = {q.id: q for q in _queues(conn, {queue_id for queue_id, _ in self._answers})}
        for (queue_id, run_id), answers in self._answers.items():
            queue = by_id.get(queue_id)
            if queue is None:
                continue
            # Reviewers who answered this item in an earlier batch are counted already.
            earlier = set(
                conn.execute(
                    select(_rf.reviewer)
                    .where(
                        _rf.queue_id == queue_id,
                        _rf.run_id == run_id,
                        _rf.reviewer.in_(sorted(set(answers.values()))),
                        _rf.feedback_id.not_in(sorted(answers)),
                    )
                    .distinct()
                ).scalars()
            )
            newcomers = len(set(answers.values()) - earlier)
            if newcomers:
                _count_reviews(conn, queue, run_id, newcomers)


def _queues_of(conn: Connection, projects: Iterable[str]) -> list[ReviewQueue]:
    wanted = sorted(projects)
    if not wanted:
        return []
    q = t.review_queues.c
    rows = conn.execute(select(t.review_queues).where(q.project.in_(wanted)).order_by(q.id))
    return [ReviewQueue.model_validate(dict(row)) for row in rows.mappings()]


def _queues(conn: Connection, ids: Iterable[str]) -> list[ReviewQueue]:
    q = t.review_queues.c
    rows = conn.execute(select(t.review_queues).where(q.id.in_(sorted(ids))))
    return [ReviewQueue.model_validate(dict(row)) for row in rows.mappings()]


def runs_rated_by(conn: Connection, feedback_ids: Iterable[str]) -> set[str]:
    """The runs these feedback rows are on (read before the rows go)."""
    f = t.feedback.c
    found: set[str] = set()
    wanted = sorted(feedback_ids)
    for start in range(0, len(wanted), CHUNK):
        query = select(f.run_id).where(f.id.in_(wanted[start : start + CHUNK]))
        found.update(run_id for run_id in conn.execute(query).scalars() if run_id)
    return found


def after_removal(conn: Connection, removed_runs: Iterable[str], rated: set[str]) -> None:
    """Membership once rows were deleted outside the log (forgetting a person).

    Removed runs leave every queue; runs that lost feedback or reviews are
    counted again and checked against their queues' rules.
    """
    removed = sorted(removed_runs)
    for start in range(0, len(removed), CHUNK):
        chunk = removed[start : start + CHUNK]
        conn.execute(delete(t.review_members).where(_members.run_id.in_(chunk)))
    left = sorted(rated - set(removed))
    if not left:
        return
    projects = set(conn.execute(select(_runs.project).where(_runs.id.in_(left))).scalars())
    queues = _queues_of(conn, projects)
    for queue in queues:
        for start in range(0, len(left), CHUNK):
            chunk = left[start : start + CHUNK]
            reviewers = (
                select(func.count(func.distinct(_rf.reviewer)))
                .where(_rf.queue_id == queue.id, _rf.run_id == _members.run_id)
                .scalar_subquery()
            )
            conn.execute(
                t.review_members.update()
                .where(_members.queue_id == queue.id, _members.run_id.in_(chunk))
                .values(reviews=reviewers)
            )
            conn.execute(
                t.review_members.update()
                .where(_members.queue_id == queue.id, _members.run_id.in_(chunk))
                .values(done=_members.reviews >= queue.reviewers_per_item)
            )
    for group in _by_rule(queues):
        refresh_runs(conn, group, left, rated=True)
