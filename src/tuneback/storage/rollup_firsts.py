"""The day each user and conversation first ran, so "how many since the start" is a sum.

Counting the different users or conversations of a window from the daily
rollups reads one row per value, model and day, which grows with the project.
A window that starts at the beginning (all time, or everything before a
moment) needs less: a value is in it when it first ran before the window's
end. So each value's first day is kept per model and over every model
(``rollup_firsts``), and how many values first ran on each day
(``rollup_newcomers``): such a window's count is a sum over its days, plus the
values of its last partial day that had not run before it. Windows with a
start are counted from each value's days (:mod:`tuneback.storage.rollup_days`),
which are kept here too.

The tables are kept from the same differences as the rollups (:func:`keep`):
a day on which a value gains runs can only move its first day earlier; a day
on which it loses runs (forgetting a person) recounts its first days from the
runs that are left.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, literal_column, select

from tuneback.storage import rollup_days
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInsert
from tuneback.storage.engine import Dialect
from tuneback.storage.rollup_windows import WindowRollups
from tuneback.storage.rollups import Tallies, period_of

DIMS = ("user", "conversation")
Scope = tuple[bool, str]
"""(every_model, model): one model's first day, or (True, "") the first over all."""
Firsts = dict[tuple[str, str, str], dict[Scope, datetime]]
"""(project, dim, value) -> its first day in each scope."""
_CHUNK = 500


# -- keeping them -------------------------------------------------------------------------


def keep(conn: Connection, changes: Tallies) -> None:
    """Move first days by the runs that ``changes`` adds to or takes from daily rows."""
    gained: Firsts = {}
    days: rollup_days.Days = {}
    lost: set[tuple[str, str, str]] = set()
    for (project, dim, grain, period, model, value), tally in changes.rows.items():
        runs = tally.counts["runs"]
        if grain != "d" or dim not in DIMS or not value or not runs:
            continue
        key = (project, dim, value)
        if runs < 0:
            lost.add(key)
            continue
        scopes = gained.setdefault(key, {})
        for scope in ((False, model), (True, "")):
            scopes[scope] = min(scopes.get(scope, period), period)
            days.setdefault(key, {}).setdefault(scope, set()).add(period)
    if not gained and not lost:
        return
    # Before the first days change: the days of a value are found through them,
    # and the first days of the values that only gained runs are read with them.
    before = rollup_days.keep(conn, days, lost)
    if lost:
        before |= _stored(conn, lost)
    after = _recounted(conn, lost)
    for key, scopes in gained.items():
        if key in lost:
            continue
        merged = dict(before.get(key, {}))
        for scope, period in scopes.items():
            merged[scope] = min(merged.get(scope, period), period)
        after[key] = merged
    _write(conn, before, after)


def clear(conn: Connection, project: str | None = None) -> None:
    """Forget every first day and every day (of one project, or all) before a recount."""
    for table in (t.rollup_firsts, t.rollup_newcomers):
        conn.execute(delete(table).where(*([table.c.project == project] if project else [])))
    rollup_days.clear(conn, project)


def _stored(conn: Connection, keys: Iterable[tuple[str, str, str]]) -> Firsts:
    c = t.rollup_firsts.c
    found: Firsts = {}
    for (project, dim), values in _by_project(keys):
        query = select(c.value, c.every_model, c.model, c.period).where(
            c.project == project, c.dim == dim, c.value.in_(values)
        )
        for row in conn.execute(query):
            scopes = found.setdefault((project, dim, row.value), {})
            scopes[(bool(row.every_model), row.model)] = row.period
    return found


def _recounted(conn: Connection, keys: Iterable[tuple[str, str, str]]) -> Firsts:
    """First days from the runs stored now (none for a value that has no runs left)."""
    r = t.runs.c
    found: Firsts = {key: {} for key in keys}
    for (project, dim), values in _by_project(found):
        column = r.user if dim == "user" else r.conversation_id
        query = (
            select(column, r.model, func.min(t.run_time()).label("ran_at"))
            .where(r.project == project, column.in_(values))
            .group_by(column, r.model)
        )
        for value, model, ran_at in conn.execute(query):
            scopes = found[(project, dim, value)]
            day = period_of(ran_at, "d")
            for scope in ((False, model or ""), (True, "")):
                scopes[scope] = min(scopes.get(scope, day), day)
    return found


def _write(conn: Connection, before: Firsts, after: Firsts) -> None:
    """Store the first days that changed and move their newcomers from day to day."""
    firsts: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    newcomers: dict[tuple[str, str, bool, str, datetime], int] = {}
    for key, scopes in after.items():
        old = before.get(key, {})
        project, dim, value = key
        for scope in old.keys() | scopes.keys():
            was, now = old.get(scope), scopes.get(scope)
            if was == now:
                continue
            every_model, model = scope
            row: dict[str, Any] = {"project": project, "dim": dim, "value": value}
            row |= {"every_model": every_model, "model": model}
            if now is None:
                gone.append(row)
            else:
                firsts.append({**row, "period": now})
                count = (project, dim, every_model, model, now)
                newcomers[count] = newcomers.get(count, 0) + 1
            if was is not None:
                count = (project, dim, every_model, model, was)
                newcomers[count] = newcomers.get(count, 0) - 1
    dialect = Dialect.of(conn)
    # In key order, as the rollups are written, so concurrent writers do not deadlock.
    if gone:
        gone.sort(key=_first_key)
        conn.execute(_DELETE_FIRST, [{f"k_{n}": row[n] for n in _FIRST_KEY} for row in gone])
    if firsts:
        _upsert(conn, dialect, t.rollup_firsts, sorted(firsts, key=_first_key))
    counts: list[dict[str, Any]] = [
        {**dict(zip(_NEWCOMER_KEY, key, strict=True)), "newcomers": n}
        for key, n in sorted(newcomers.items())
        if n
    ]
    if counts:
        _upsert(conn, dialect, t.rollup_newcomers, counts)
        spent = [
            {f"k_{n}": row[n] for n in _NEWCOMER_KEY} for row in counts if row["newcomers"] < 0
        ]
        if spent:
            conn.execute(_DELETE_NO_NEWCOMERS, spent)


def _first_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[n] for n in _FIRST_KEY)


_FIRST_KEY = ["project", "dim", "value", "every_model", "model"]
_NEWCOMER_KEY = ["project", "dim", "every_model", "model", "period"]
_UPSERTS: dict[tuple[str, str], BulkInsert] = {}


def _upsert(conn: Connection, dialect: Dialect, table: Any, rows: list[dict[str, Any]]) -> None:
    """First days are set (the caller has merged them); newcomers are added to."""
    upsert = _UPSERTS.get((table.name, dialect.name))
    if upsert is None:
        stmt = dialect.insert(table)
        if table is t.rollup_firsts:
            key, sets = _FIRST_KEY, {"period": stmt.excluded.period}
        else:
            key = _NEWCOMER_KEY
            sets = {"newcomers": table.c.newcomers + stmt.excluded.newcomers}
        statement = stmt.on_conflict_do_update(index_elements=key, set_=sets)
        upsert = _UPSERTS[(table.name, dialect.name)] = BulkInsert(table, conn.dialect, statement)
    upsert.execute(conn, rows)


_DELETE_FIRST = delete(t.rollup_firsts).where(
    *(t.rollup_firsts.c[name] == bindparam(f"k_{name}") for name in _FIRST_KEY)
)
_DELETE_NO_NEWCOMERS = delete(t.rollup_newcomers).where(
    *(t.rollup_newcomers.c[name] == bindparam(f"k_{name}") for name in _NEWCOMER_KEY),
    t.rollup_newcomers.c.newcomers <= 0,
)


def _by_project(
    keys: Iterable[tuple[str, str, str]],
) -> Iterator[tuple[tuple[str, str], list[str]]]:
    """Values grouped by project and dimension, in chunks an ``IN`` list can hold."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for project, dim, value in sorted(set(keys)):
        grouped.setdefault((project, dim), []).append(value)
    for scope, values in grouped.items():
        for start in range(0, len(values), _CHUNK):
            yield scope, values[start : start + _CHUNK]


# -- reading them -------------------------------------------------------------------------


def distinct(window: WindowRollups, dim: str, *, by_model: bool) -> dict[str, int]:
    """How many different users or conversations (``dim``) the window holds, per model
    or under ``""``: from first days when the window has no start, else from each
    value's days (:func:`rollup_days.distinct`), or from the runs when it holds no
    whole day (:meth:`WindowRollups.distinct`)."""
    kind, since, day_hi = window.pieces[0]
    if kind != "d" or since is not None:
        counted = rollup_days.distinct(window, dim, by_model=by_model)
        return counted if counted is not None else window.distinct(dim, by_model=by_model)
    every_model = not by_model and window.model is None
    n = t.rollup_newcomers.c
    query = (
        select(n.model, func.sum(n.newcomers))
        .where(
            n.project == window.project,
            n.dim == dim,
            n.every_model == every_model,
            *([n.model == window.model] if window.model is not None else []),
            *([n.period < day_hi] if day_hi is not None else []),
        )
        .group_by(n.model)
    )
    found = {model: int(count) for model, count in window.conn.execute(query)}
    tail = [(lo, hi) for kind, lo, hi in window.pieces[1:]]
    if day_hi is not None and tail:
        for model, count in _first_in(window, dim, tail[0][0], tail[-1][1], every_model):
            found[model] = found.get(model, 0) + count
    return found if by_model else {"": sum(found.values())}


def _first_in(
    window: WindowRollups,
    dim: str,
    day: datetime | None,
    until: datetime | None,
    every_model: bool,
) -> list[tuple[str, int]]:
    """(model, how many) users or conversations of the runs from the start of ``day``
    to ``until`` (within that day) had not run before that day."""
    r, f = t.runs.c, t.rollup_firsts.c
    column = r.user if dim == "user" else r.conversation_id
    # The different values of those runs first, then each one's first day looked up
    # by the primary key, as a subquery per value: as a join or NOT EXISTS the
    # planner may read every first day of the project into a hash instead.
    seen = (
        select(
            (literal_column("''") if every_model else func.coalesce(r.model, "")).label("model"),
            column.label("value"),
        )
        .where(*window.runs_between(day, until), column.is_not(None))
        .distinct()
        .subquery()
    )
    first = (
        select(f.period)
        .where(
            f.project == window.project,
            f.dim == dim,
            f.value == seen.c.value,
            f.every_model == every_model,
            f.model == seen.c.model,
        )
        .scalar_subquery()
    )
    query = (
        select(seen.c.model, func.count())
        .where(func.coalesce(first, day) >= day)
        .group_by(seen.c.model)
    )
    return [(model, int(n)) for model, n in window.conn.execute(query)]
