"""The days each user and conversation ran, so a window's different ones are sums.

Counting the different users or conversations of a window that has a start
from the daily rollups reads one row per value, model and day, which grows
with the window's runs. Instead, each value's days are kept per model and over
every model (``rollup_days``), and for each day how many values ran on it after
which day before (``rollup_returns``; a value's first day counts as its own
previous day). A value runs in the whole days ``[a, b)`` exactly once with no
day before ``a`` as its previous day: on the first of its days there. So the
whole days' count is a sum of a few rows per day (:func:`distinct`).

The hours and ragged edges around the whole days add their values that have no
day there, counted in the database with one index probe of the days per value:
users from the hourly rollups and the runs of the ragged edges, conversations
from the runs. When most of the partial day before or after the whole days is
in the window, its conversations are counted the other way round: the day's sum
of those with no day in the whole days, less those that ran only in the part of
the day outside the window (a conversation's runs are found by its id). A week
that ends late in a day, or starts early in one, so reads the runs of the short
parts of its partial days; one cut at noon reads the most.

The tables are kept from the same differences as the rollups (:func:`keep`):
a day that gains its first run of a value is put between that value's days
before and after it, and the day after it now follows it instead of the day
before; a value that loses runs (forgetting a person) is recounted from the
runs that are left.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    ScalarSelect,
    Select,
    Text,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tuneback.domain.criteria import RunCriteria
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInsert
from tuneback.storage.criteria import run_conditions
from tuneback.storage.engine import Dialect
from tuneback.storage.rollup_windows import Piece, WindowRollups
from tuneback.storage.rollups import period_of, step_of

Scope = tuple[bool, str]
"""(every_model, model): one model's days, or (True, "") the days of any model."""
Key = tuple[str, str, str]
"""project, dim, value."""
Days = dict[Key, dict[Scope, set[datetime]]]
Firsts = dict[Key, dict[Scope, datetime]]
"""(project, dim, value) -> its first day in each scope."""
ReturnKey = tuple[str, str, bool, str, datetime, datetime]
"""project, dim, every_model, model, period, previous: a ``rollup_returns`` row's key."""
_CHUNK = 500


# -- keeping them -------------------------------------------------------------------------


def keep(conn: Connection, gained: Days, lost: set[Key]) -> Firsts:
    """Add the days on which values ``gained`` runs; recount the values that ``lost`` runs.

    Returns the first days stored for the values that only gained runs, read on
    the way, so that keeping those does not read them again.
    """
    changes = _Changes()
    firsts: Firsts = {}
    if lost:
        stored = _stored(conn, lost)
        counted = _counted(conn, lost)
        for key in sorted(lost):
            was, now = stored.get(key, {}), counted.get(key, {})
            for scope in was.keys() | now.keys():
                changes.replace(key, scope, sorted(was.get(scope, ())), sorted(now.get(scope, ())))
    growing = {key: scopes for key, scopes in gained.items() if key not in lost}
    if growing:
        lo = min(day for scopes in growing.values() for days in scopes.values() for day in days)
        hi = max(day for scopes in growing.values() for days in scopes.values() for day in days)
        around = _around(conn, growing.keys(), lo, hi)
        for key, scopes in growing.items():
            for scope, days in scopes.items():
                near = around.get((*key, *scope))
                if near is None:
                    old = []
                else:
                    firsts.setdefault(key, {})[scope] = near.first
                    old = [*near.before, *sorted(near.inside), *near.after]
                changes.replace(key, scope, old, sorted(set(old) | days))
    changes.write(conn)
    return firsts


def clear(conn: Connection, project: str | None = None) -> None:
    """Forget every day (of one project, or all) before a recount."""
    for table in (t.rollup_days, t.rollup_returns):
        conn.execute(delete(table).where(*([table.c.project == project] if project else [])))


class _Changes:
    """Days to add and remove, and what that does to the returns, written at once."""

    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []
        self.removed: list[dict[str, Any]] = []
        self.returns: dict[ReturnKey, int] = {}

    def replace(
        self,
        key: Key,
        scope: Scope,
        old: list[datetime],
        new: list[datetime],
    ) -> None:
        """A value's consecutive days in a scope go from ``old`` to ``new`` (both sorted).

        Both may start from a stored day before the change: whatever that day
        follows, it counts once as taken away and once as added, which cancel.
        """
        if old == new:
            return
        project, dim, value = key
        row: dict[str, Any] = {"project": project, "dim": dim, "value": value}
        row |= {"every_model": scope[0], "model": scope[1]}
        old_set, new_set = set(old), set(new)
        self.added += [{**row, "period": day} for day in new if day not in old_set]
        self.removed += [{**row, "period": day} for day in old if day not in new_set]
        for sign, days in ((-1, old), (1, new)):
            for period, previous in _links(days):
                count = (project, dim, *scope, period, previous)
                self.returns[count] = self.returns.get(count, 0) + sign

    def write(self, conn: Connection) -> None:
        dialect = Dialect.of(conn)
        # In key order, as the rollups are written.
        if self.removed:
            self.removed.sort(key=_day_key)
            conn.execute(
                _DELETE_DAY, [{f"k_{n}": row[n] for n in _DAY_KEY} for row in self.removed]
            )
        if self.added:
            self.added.sort(key=_day_key)
            _bulk(conn, dialect, t.rollup_days).execute(conn, self.added)
        counts: list[dict[str, Any]] = [
            {**dict(zip(_RETURN_KEY, key, strict=True)), "returned": n}
            for key, n in sorted(self.returns.items())
            if n
        ]
        if counts:
            _bulk(conn, dialect, t.rollup_returns).execute(conn, counts)
            spent = [
                {f"k_{n}": row[n] for n in _RETURN_KEY} for row in counts if row["returned"] < 0
            ]
            if spent:
                conn.execute(_DELETE_NO_RETURNS, spent)


def _links(days: list[datetime]) -> Iterator[tuple[datetime, datetime]]:
    """(day, the day before it) for consecutive days; a first day is its own day before."""
    for n, day in enumerate(days):
        yield day, days[n - 1] if n else day


@dataclass
class _Near:
    """A value's stored days in one scope near the days it gains."""

    first: datetime
    before: list[datetime]
    """Its last day before them, if any."""
    inside: set[datetime]
    """Its days from the first to the last of them."""
    after: list[datetime]
    """Its first day after them, if any."""


def _around(
    conn: Connection, keys: Iterable[Key], lo: datetime, hi: datetime
) -> dict[tuple[str, str, str, bool, str], _Near]:
    """Per value and scope with stored days: the first of them and those near ``lo`` to ``hi``.

    Driven by the first days: a value has days in a scope exactly when it has a
    first day there, and each of its scopes is then a range of the primary key,
    probed by subqueries that read one index entry each (a join would let the
    planner hash every stored day while a rebuild has no statistics yet).
    """
    found: dict[tuple[str, str, str, bool, str], _Near] = {}
    near_query, inside_query = _around_queries(conn)
    for (project, dim), values in _by_project(keys):
        params = {"project": project, "dim": dim, "values": values, "lo": lo, "hi": hi}
        for row in conn.execute(near_query, params):
            found[(project, dim, row.value, bool(row.every_model), row.model)] = _Near(
                row.first,
                [row.before] if row.before is not None else [],
                {lo} if row.on_lo is not None else set(),
                [row.after] if row.after is not None else [],
            )
        if lo < hi:
            for row in conn.execute(inside_query, params):
                key = (project, dim, row.value, bool(row.every_model), row.model)
                if key in found:
                    found[key].inside.add(row.period)
    return found


_AROUND: dict[str, tuple[Select[Any], Select[Any]]] = {}


def _around_queries(conn: Connection) -> tuple[Select[Any], Select[Any]]:
    dialect = Dialect.of(conn).name
    queries = _AROUND.get(dialect)
    if queries is None:
        f, d = t.rollup_firsts.c, t.rollup_days.c
        lo, hi = bindparam("lo", type_=d.period.type), bindparam("hi", type_=d.period.type)

        def nearest(where: Any, order: Any) -> ScalarSelect[Any]:
            n = t.rollup_days.alias("nearest").c
            return (
                select(n.period)
                .where(
                    n.project == f.project,
                    n.dim == f.dim,
                    n.value == f.value,
                    n.every_model == f.every_model,
                    n.model == f.model,
                    where(n.period),
                )
                .order_by(order(n.period))
                .limit(1)
                .correlate(t.rollup_firsts)
                .scalar_subquery()
            )

        columns: list[Any] = [
            f.value,
            f.every_model,
            f.model,
            f.period.label("first"),
            nearest(lambda period: period < lo, lambda period: period.desc()).label("before"),
            nearest(lambda period: period == lo, lambda period: period).label("on_lo"),
            nearest(lambda period: period > hi, lambda period: period).label("after"),
        ]
        days: list[Any] = [d.value, d.every_model, d.model, d.period]
        near = select(*columns).where(f.project == bindparam("project"), f.dim == bindparam("dim"))
        inside = select(*days).where(
            d.project == bindparam("project"),
            d.dim == bindparam("dim"),
            d.period > lo,
            d.period <= hi,
        )
        if dialect == "postgresql":
            # One index probe per value, joined laterally: asked for a list of
            # values, a planner without statistics (a rebuild's fresh rows) may
            # read every value of the dimension and filter them instead.
            wanted = (
                func.unnest(bindparam("values", type_=ARRAY(Text())))
                .table_valued("value")
                .render_derived(name="wanted")
            )
            # (OFFSET 0 keeps the planner from turning them back into a join.)
            near_each = near.where(f.value == wanted.c.value).offset(0).lateral("near")
            inside_each = inside.where(d.value == wanted.c.value).offset(0).lateral("inside")
            near = select(near_each).select_from(wanted.join(near_each, true()))
            inside = select(inside_each).select_from(wanted.join(inside_each, true()))
        else:
            near = near.where(f.value.in_(bindparam("values", expanding=True)))
            inside = inside.where(d.value.in_(bindparam("values", expanding=True)))
        queries = _AROUND[dialect] = (near, inside)
    return queries


def _stored(conn: Connection, keys: Iterable[Key]) -> Days:
    d = t.rollup_days.c
    found: Days = {}
    for (project, dim), values in _by_project(keys):
        query = select(d.value, d.every_model, d.model, d.period).where(
            d.project == project, d.dim == dim, d.value.in_(values)
        )
        for row in conn.execute(query):
            scopes = found.setdefault((project, dim, row.value), {})
            scopes.setdefault((bool(row.every_model), row.model), set()).add(row.period)
    return found


def _counted(conn: Connection, keys: Iterable[Key]) -> Days:
    """Days from the runs stored now (none for a value that has no runs left)."""
    r = t.runs.c
    found: Days = {}
    for (project, dim), values in _by_project(keys):
        column = r.user if dim == "user" else r.conversation_id
        query = (
            select(column, r.model, t.run_time().label("ran_at"))
            .where(r.project == project, column.in_(values))
            .distinct()
        )
        for value, model, ran_at in conn.execute(query):
            scopes = found.setdefault((project, dim, value), {})
            day = period_of(ran_at, "d")
            for scope in ((False, model or ""), (True, "")):
                scopes.setdefault(scope, set()).add(day)
    return found


def _by_project(keys: Iterable[Key]) -> Iterator[tuple[tuple[str, str], list[str]]]:
    """Values grouped by project and dimension, in chunks an ``IN`` list can hold."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for project, dim, value in sorted(set(keys)):
        grouped.setdefault((project, dim), []).append(value)
    for scope, values in grouped.items():
        for start in range(0, len(values), _CHUNK):
            yield scope, values[start : start + _CHUNK]


def _day_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[n] for n in _DAY_KEY)


_DAY_KEY = ["project", "dim", "value", "every_model", "model", "period"]
_RETURN_KEY = ["project", "dim", "every_model", "model", "period", "previous"]
_BULK: dict[tuple[str, str], BulkInsert] = {}


def _bulk(conn: Connection, dialect: Dialect, table: Any) -> BulkInsert:
    """Days are inserted (the caller knows they are new); returns are added to."""
    bulk = _BULK.get((table.name, dialect.name))
    if bulk is None:
        statement = None
        if table is t.rollup_returns:
            stmt = dialect.insert(table)
            statement = stmt.on_conflict_do_update(
                index_elements=_RETURN_KEY,
                set_={"returned": table.c.returned + stmt.excluded.returned},
            )
        bulk = _BULK[(table.name, dialect.name)] = BulkInsert(table, conn.dialect, statement)
    return bulk


_DELETE_DAY = delete(t.rollup_days).where(
    *(t.rollup_days.c[name] == bindparam(f"k_{name}") for name in _DAY_KEY)
)
_DELETE_NO_RETURNS = delete(t.rollup_returns).where(
    *(t.rollup_returns.c[name] == bindparam(f"k_{name}") for name in _RETURN_KEY),
    t.rollup_returns.c.returned <= 0,
)


# -- reading them -------------------------------------------------------------------------


def distinct(window: WindowRollups, dim: str, *, by_model: bool) -> dict[str, int] | None:
    """How many different users or conversations (``dim``) the window holds, per model
    or under ``""``; None unless the window has a start and whole days after it."""
    pieces = window.pieces
    at = [n for n, (kind, _, _) in enumerate(pieces) if kind == "d"]
    if not at or pieces[at[0]][1] is None:
        return None
    _, first, end = pieces[at[0]]
    assert first is not None
    lead, trail = pieces[: at[0]], pieces[at[0] + 1 :]
    every_model = not by_model and window.model is None
    unseen = _Unseen(window, dim, every_model, first, end)
    found = _returned(window, dim, every_model, first, first, end)
    after = trail[-1][2] if trail else None
    if dim == "conversation" and end is not None and after is not None:
        rest = end + step_of("d") - after
        if rest < after - end:
            # Most of the day after the whole days is in the window: its conversations
            # with no day in the whole days are a sum too, less those that ran on it
            # only after the window; those of the part before the whole days count
            # unless that sum has them. A conversation has few runs, so whether it
            # ran in the window's part of the day is looked up by conversation.
            _add(found, _returned(window, dim, every_model, first, end, end + step_of("d")))
            late: list[Piece] = [("raw", after, end + step_of("d"))]
            _add(found, unseen.count(late, not_ran=(end, after)), -1)
            _add(found, unseen.count(lead, not_ran=(end, after)))
            return _shaped(found, by_model)
    since = lead[0][1] if lead else None
    day = first - step_of("d")
    if dim == "conversation" and since is not None and since - day < first - since:
        # Most of the day before the whole days is in the window: the same the
        # other way round, less those that ran on it only before the window.
        _add(found, _before(window, dim, every_model, day, first, end))
        early: list[Piece] = [("raw", day, since)]
        _add(found, unseen.count(early, not_ran=(since, first)), -1)
        _add(found, unseen.count(trail, not_ran=(since, first)))
        return _shaped(found, by_model)
    _add(found, unseen.count(lead + trail))
    return _shaped(found, by_model)


def _add(found: dict[str, int], counts: dict[str, int], sign: int = 1) -> None:
    for model, n in counts.items():
        found[model] = found.get(model, 0) + sign * n


def _shaped(found: dict[str, int], by_model: bool) -> dict[str, int]:
    return {model: n for model, n in found.items() if n} if by_model else {"": sum(found.values())}


def _returned(
    window: WindowRollups,
    dim: str,
    every_model: bool,
    first: datetime,
    lo: datetime,
    hi: datetime | None,
) -> dict[str, int]:
    """Per model: the users or conversations that ran on the days from ``lo`` to ``hi``
    with no day from ``first`` to ``lo`` before (``lo`` is ``first``: the different ones
    of those days)."""
    c = t.rollup_returns.c
    query = (
        select(c.model, func.sum(c.returned))
        .where(
            c.project == window.project,
            c.dim == dim,
            c.every_model == every_model,
            *([c.model == window.model] if window.model is not None else []),
            c.period >= lo,
            *([c.period < hi] if hi is not None else []),
            or_(c.previous < first, c.previous == c.period),
        )
        .group_by(c.model)
    )
    return {model: int(n) for model, n in window.conn.execute(query)}


def _before(
    window: WindowRollups,
    dim: str,
    every_model: bool,
    day: datetime,
    first: datetime,
    end: datetime | None,
) -> dict[str, int]:
    """Per model: the users or conversations that ran on ``day`` and on no day from
    ``first`` (the day after it) to ``end``: those of the day, less those whose next
    day is one of them."""
    c = t.rollup_returns.c
    scope = [
        c.project == window.project,
        c.dim == dim,
        c.every_model == every_model,
        *([c.model == window.model] if window.model is not None else []),
    ]
    found: dict[str, int] = {}
    queries = (
        (1, select(c.model, func.sum(c.returned)).where(*scope, c.period == day)),
        (
            -1,
            select(c.model, func.sum(c.returned)).where(
                *scope,
                c.period >= first,
                *([c.period < end] if end is not None else []),
                c.previous == day,
            ),
        ),
    )
    for sign, query in queries:
        for model, n in window.conn.execute(query.group_by(c.model)):
            found[model] = found.get(model, 0) + sign * int(n)
    return found


class _Unseen:
    """Counts, in the database, the users or conversations that ran around the whole
    days ``first`` to ``end`` and on none of them (those the whole days' sum left out)."""

    def __init__(
        self,
        window: WindowRollups,
        dim: str,
        every_model: bool,
        first: datetime,
        end: datetime | None,
    ) -> None:
        self.window, self.dim, self.every_model = window, dim, every_model
        self.first, self.end = first, end

    def count(
        self, pieces: Sequence[Piece], not_ran: tuple[datetime, datetime] | None = None
    ) -> dict[str, int]:
        """Per model: those of ``pieces`` with no day in the whole days and, given
        ``not_ran``, no run in it either (conversations only: found by their id).

        Each value is probed once over every model: the days by the value's key, a
        conversation's runs by its id. Split by model, a value that ran on none of
        them with any model is unseen with each model it ran with, so only the few
        others are probed again per model.
        """
        values = self.window.values_query(self.dim, pieces)
        if values is None:
            return {}
        each = values.subquery()
        unique = select(each.c.value).distinct().subquery()
        if self.every_model:
            unseen = select(unique.c.value).where(
                ~self._whole_day(unique.c.value), *self._not_ran(unique.c.value, not_ran)
            )
            n = self.window.conn.execute(select(func.count()).select_from(unseen.subquery()))
            found = n.scalar_one()
            return {"": found} if found else {}
        seen_any = select(unique.c.value).where(
            or_(self._whole_day(unique.c.value), *self._ran(unique.c.value, not_ran))
        )
        unseen_here = and_(
            ~self._whole_day(each.c.value, each.c.model),
            *self._not_ran(each.c.value, not_ran, each.c.model),
        )
        query = (
            select(each.c.model, func.count())
            .where(or_(each.c.value.not_in(seen_any), unseen_here))
            .group_by(each.c.model)
        )
        return {model: int(n) for model, n in self.window.conn.execute(query)}

    def _whole_day(self, value: Any, model: Any = None) -> Exists:
        """Whether the value ran on one of the whole days (with ``model``, or any).

        (OFFSET 0 keeps PostgreSQL from turning a probe into a join, which would
        hash every day of the whole days.)"""
        d = t.rollup_days.c
        return (
            select(literal_column("1"))
            .where(
                d.project == self.window.project,
                d.dim == self.dim,
                d.value == value,
                d.every_model == (model is None),
                d.model == ("" if model is None else model),
                d.period >= self.first,
                *([d.period < self.end] if self.end else []),
            )
            .offset(0)
            .exists()
        )

    def _ran(
        self, value: Any, between: tuple[datetime, datetime] | None, model: Any = None
    ) -> list[Exists]:
        """Whether the conversation ran ``between`` two moments (with ``model``, or any)."""
        if between is None:
            return []
        other = t.runs.alias("other")
        within = RunCriteria(project=self.window.project, since=between[0], until=between[1])
        where = [other.c.conversation_id == value, *run_conditions(within, other)]
        if model is not None:
            where.append(func.coalesce(other.c.model, "") == model)
        return [select(literal_column("1")).where(*where).offset(0).exists()]

    def _not_ran(
        self, value: Any, between: tuple[datetime, datetime] | None, model: Any = None
    ) -> list[ColumnElement[bool]]:
        return [~ran for ran in self._ran(value, between, model)]
