"""Filtered, paginated reads for the API: runs by a criteria, feedback, comparisons.

Pages are cut by a cursor instead of an offset: the cursor names the last row
seen (its time and id), so a page stays correct while new rows arrive and deep
pages cost no more than the first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Column, ColumnElement, and_, exists, func, literal, or_, select

from tuneback.domain import ComparisonRecord, FeedbackRecord, Run
from tuneback.domain.criteria import RunCriteria
from tuneback.errors import ValidationError
from tuneback.storage import tables as t
from tuneback.storage.criteria import run_conditions
from tuneback.storage.rows import feedback_from_row
from tuneback.storage.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results, newest first; ``next_cursor`` is None on the last page."""

    data: list[T]
    next_cursor: str | None


RunFilter = RunCriteria
"""What the explorer and the runs API look for: the one :class:`RunCriteria`."""


CURSOR_PATTERN = r"^-?[0-9]{1,18}~[A-Za-z0-9_.:\-]{1,64}$"
"""A cursor: the last row's time in microseconds since 1970 (UTC), ``~``, and its id.

Any text of this shape is a place in the list, so a client may also make one
(``0~`` and an id starts before 1970); rows before that place come next.
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST = -((_EPOCH - datetime(1, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
_LATEST = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def encode_cursor(moment: datetime, row_id: str) -> str:
    return f"{(moment - _EPOCH) // timedelta(microseconds=1)}~{row_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The microseconds and the row id a cursor names."""
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        raise ValidationError(
            "cursor: not a cursor; pass next_cursor from the previous page",
            details=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        )
    micros, row_id = cursor.split("~", 1)
    return int(micros), row_id


def _before(created: Column[Any], row_id: Column[Any], cursor: str | None) -> ColumnElement[bool]:
    if cursor is None:
        return literal(True)
    micros, last_id = decode_cursor(cursor)
    # A place outside the years 1..9999 is before or after every row.
    if micros < _EARLIEST:
        return literal(False)
    if micros > _LATEST:
        return literal(True)
    moment = _EPOCH + timedelta(microseconds=micros)
    return or_(created < moment, and_(created == moment, row_id < last_id))


COUNT_CAP = 10_000
"""The explorer counts matches up to this many exactly."""


class Queries:
    """Read-only queries on a store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    def _conditions(self, f: RunCriteria) -> list[ColumnElement[bool]]:
        return run_conditions(f)

    def explore(
        self,
        f: RunCriteria,
        *,
        sort: Literal["newest", "oldest", "slowest", "fastest", "tokens"] = "newest",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of runs for the explorer with each run's current feedback, and the total.

        Sorted pages use an offset: the explorer is for people paging a few
        screens; the API's cursors serve programs that walk everything.
        """
        c, fb = t.runs.c, t.feedback.c
        order = {
            "newest": [t.run_time().desc(), c.id.desc()],
            "oldest": [t.run_time().asc(), c.id.asc()],
            "slowest": [c.latency_ms.desc().nulls_last(), c.id.desc()],
            "fastest": [c.latency_ms.asc().nulls_last(), c.id.desc()],
            "tokens": [
                (func.coalesce(c.prompt_tokens, 0) + func.coalesce(c.completion_tokens, 0)).desc(),
                c.id.desc(),
            ],
        }[sort]
        conditions = self._conditions(f)
        page = select(t.runs).where(*conditions).order_by(*order).limit(limit).offset(offset)
        # Counting every match of a broad filter over millions of runs costs more
        # than the page itself; past COUNT_CAP the page says "more than".
        capped = select(t.runs.c.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
        count = select(func.count()).select_from(capped)
        with self.engine.connect() as conn:
            runs = [Run.model_validate(dict(r)) for r in conn.execute(page).mappings()]
            total = int(conn.execute(count).scalar_one())
            ids = [run.id for run in runs]
            feedback: dict[str, list[FeedbackRecord]] = {}
            if ids:
                rows = conn.execute(
                    select(t.feedback)
                    .where(fb.run_id.in_(ids), fb.current.is_(True))
                    .order_by(fb.created_at)
                ).mappings()
                for row in rows:
                    record = feedback_from_row(row)
                    feedback.setdefault(record.run_id or "", []).append(record)
        return [{"run": run, "feedback": feedback.get(run.id, [])} for run in runs], total

    def runs(self, f: RunCriteria, *, limit: int = 50, cursor: str | None = None) -> Page[Run]:
        c = t.runs.c
        query = (
            select(t.runs)
            .where(*self._conditions(f), _before(c.created_at, c.id, cursor))
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = [Run.model_validate(dict(r)) for r in conn.execute(query).mappings()]
        return _page(rows, limit, lambda run: encode_cursor(run.created_at, run.id))

    def runs_by_ids(self, run_ids: Sequence[str]) -> dict[str, Run]:
        if not run_ids:
            return {}
        found: dict[str, Run] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(run_ids), 500):
                chunk = list(run_ids[start : start + 500])
                query = select(t.runs).where(t.runs.c.id.in_(chunk))
                for row in conn.execute(query).mappings():
                    run = Run.model_validate(dict(row))
                    found[run.id] = run
        return found

    def feedback(
        self,
        *,
        project: str | None,
        run_id: str | None = None,
        key: str | None = None,
        user: str | None = None,
        history: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[FeedbackRecord]:
        c = t.feedback.c
        conditions: list[ColumnElement[bool]] = [_before(c.created_at, c.id, cursor)]
        for column, wanted in ((c.project, project), (c.run_id, run_id), (c.key, key)):
            if wanted is not None:
                conditions.append(column == wanted)
        if user is not None:
            conditions.append(c.user == user)
        if not history:
            conditions.append(c.current.is_(True))
        query = (
            select(t.feedback)
            .where(*conditions)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = [feedback_from_row(r) for r in conn.execute(query).mappings()]
        return _page(rows, limit, lambda fb: encode_cursor(fb.created_at, fb.id))

    def comparisons(
        self,
        *,
        project: str | None,
        run_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ComparisonRecord]:
        c = t.comparisons.c
        conditions: list[ColumnElement[bool]] = [_before(c.created_at, c.id, cursor)]
        if project is not None:
            conditions.append(c.project == project)
        if run_id is not None:
            cr = t.comparison_runs.c
            conditions.append(exists().where(cr.comparison_id == c.id, cr.run_id == run_id))
        query = (
            select(t.comparisons)
            .where(*conditions)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = [
                ComparisonRecord.model_validate(dict(r)) for r in conn.execute(query).mappings()
            ]
        return _page(rows, limit, lambda comp: encode_cursor(comp.created_at, comp.id))

    def current_comparisons_by(self, *, project: str, user: str, since: datetime) -> int:
        """How many comparisons ``user`` made since ``since`` that no re-vote has replaced."""
        c = t.comparisons.c
        query = (
            select(func.count())
            .select_from(t.comparisons)
            .where(
                c.project == project,
                c.user == user,
                c.created_at >= since,
                c.superseded_by.is_(None),
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _page(rows: list[T], limit: int, cursor_of: Any) -> Page[T]:
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, cursor_of(rows[-1]))
    return Page(rows, None)


def existing_events(store: Store, event_ids: Sequence[str]) -> dict[str, str]:
    """The type of each event among ``event_ids`` already in the log, by id."""
    found: dict[str, str] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(event_ids), 500):
            chunk = list(event_ids[start : start + 500])
            query = select(t.events.c.id, t.events.c.type).where(t.events.c.id.in_(chunk))
            found.update((row.id, row.type) for row in conn.execute(query))
    return found
