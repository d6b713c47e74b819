"""Reading the rollups: a window cut into whole days, whole hours and ragged edges.

:func:`cover` splits a window; :class:`WindowRollups` reads its stored rows and
tallies its ragged edges from the runs with the same :func:`~tuneback.storage.rollups.tally`
that keeps the rollups, so both halves count alike. An edge that holds most of
its hour is that hour's stored rows less the tally of the rest of the hour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    func,
    literal_column,
    or_,
    select,
    union,
    union_all,
)

from tuneback.storage import tables as t
from tuneback.storage.engine import Dialect
from tuneback.storage.rollups import (
    ALL_TIME,
    COUNTERS,
    HOURLY_DIMS,
    WINDOW_GRAINS,
    Grain,
    RowKey,
    Tallies,
    Tally,
    grains_of,
    period_of,
    step_of,
    tally,
)

Piece = tuple[Literal["raw", "h", "d"], datetime | None, datetime | None]
"""Part of a window: runs read raw between two moments, or rollup rows of a grain."""


def cover(since: datetime | None, until: datetime | None, finest: Grain = "d") -> list[Piece]:
    """Split ``[since, until)`` into whole days (unless ``finest`` is hours), whole hours
    and the ragged edges that only the runs themselves can answer."""
    hour_lo = None if since is None else _ceil(since, "h")
    hour_hi = None if until is None else period_of(until, "h")
    if since is not None and until is not None and hour_lo and hour_hi and hour_lo >= hour_hi:
        return [("raw", since, until)]  # no whole hour inside: all of it from the runs
    pieces: list[Piece] = []
    if since is not None and hour_lo is not None and since < hour_lo:
        pieces.append(("raw", since, hour_lo))
    if finest == "h":
        pieces.append(("h", hour_lo, hour_hi))
    else:
        day_lo = None if hour_lo is None else _ceil(hour_lo, "d")
        day_hi = None if hour_hi is None else period_of(hour_hi, "d")
        if day_lo is not None and day_hi is not None and day_lo >= day_hi:
            pieces.append(("h", hour_lo, hour_hi))
        else:
            if hour_lo is not None and day_lo is not None and hour_lo < day_lo:
                pieces.append(("h", hour_lo, day_lo))
            pieces.append(("d", day_lo, day_hi))
            if hour_hi is not None and day_hi is not None and day_hi < hour_hi:
                pieces.append(("h", day_hi, hour_hi))
    if until is not None and hour_hi is not None and hour_hi < until:
        pieces.append(("raw", hour_hi, until))
    return pieces


def _hour_around(moment: datetime) -> tuple[datetime, datetime]:
    start = period_of(moment, "h")
    return start, start + step_of("h")


def _ceil(moment: datetime, grain: Grain) -> datetime:
    floor = period_of(moment, grain)
    return floor if floor == moment.astimezone(UTC) else floor + step_of(grain)


def in_piece(
    table: Any, project: str, grain: str, lo: datetime | None, hi: datetime | None
) -> list[ColumnElement[bool]]:
    """Rows of a table of rollups in one piece of a window."""
    c = table.c
    found: list[ColumnElement[bool]] = [c.project == project, c.grain == grain]
    if lo is not None:
        found.append(c.period >= lo)
    if hi is not None:
        found.append(c.period < hi)
    return found


def _tally_of(row: Any) -> Tally:
    """A stored rollup row's numbers, with its histograms."""
    return Tally(
        counts={name: row._mapping[name] for name in COUNTERS},
        latency=row.latency,
        ttft=row.ttft,
        label=row.label,
    )


@dataclass(frozen=True)
class Edges:
    """A window's ragged edges: those read as their whole hour's rollups, because no run
    of that hour falls outside the window, and what the runs of the others contribute."""

    whole_hours: frozenset[tuple[datetime | None, datetime | None]]
    tallies: Tallies


class WindowRollups:
    """A window's rows of every dimension: stored ones for whole hours and days, and
    the ragged edges tallied from the runs, which :func:`cover` keeps under two hours.

    An edge whose hour holds no run outside the window (the hour of "now", as a
    rule) is read as that whole hour instead."""

    def __init__(
        self,
        conn: Connection,
        *,
        project: str,
        since: datetime | None,
        until: datetime | None,
        model: str | None,
        runs_between: Callable[[datetime | None, datetime | None], list[ColumnElement[bool]]],
        finest: Grain = "d",
        edges: Edges | None = None,
    ) -> None:
        """``edges`` are the ragged edges as another reading of the same window found
        them (they do not depend on ``finest``), so several answers pay for them once."""
        self.conn, self.project, self.model = conn, project, model
        self.since, self.until = since, until
        self.runs_between = runs_between
        pieces = cover(since, until, finest)
        if edges is None:
            raw = [(lo, hi) for kind, lo, hi in pieces if kind == "raw"]
            whole = frozenset(edge for edge in raw if self._alone_in_hour(*edge))
            tallies = Tallies()
            for lo, hi in raw:
                if (lo, hi) not in whole:
                    tallies.add(self._edge(lo, hi))
            # (Rows an edge read as its hour less the rest may be left with nothing.)
            edges = Edges(whole, tallies.changes())
        self.found_edges, self.edges = edges, edges.tallies
        self.pieces: list[Piece] = []
        for kind, lo, hi in pieces:
            if kind == "raw" and (lo, hi) in edges.whole_hours:
                assert lo is not None  # a whole hour's edge has both ends
                self.pieces.append(("h", *_hour_around(lo)))
            else:
                self.pieces.append((kind, lo, hi))

    def _alone_in_hour(self, lo: datetime | None, hi: datetime | None) -> bool:
        """Whether the runs of ``[lo, hi)`` are all the runs of the hour it lies in."""
        if lo is None or hi is None:
            return False
        start, end = _hour_around(lo)
        if hi > end:
            return False
        for before, after in ((start, lo), (hi, end)):
            if before < after:
                where = self.runs_between(before, after)
                if self.conn.execute(select(literal_column("1")).where(*where).limit(1)).first():
                    return False
        return True

    def _edge(self, lo: datetime | None, hi: datetime | None) -> Tallies:
        """What the runs of a ragged edge contribute: tallied from them or, when the
        rest of its hour is the shorter part, as the hour's stored rows less the rest.
        Either way an edge that ends or starts on the hour reads at most half an hour
        of runs."""
        tallied = functools.partial(tally, self.conn, grains=("h",))
        if lo is None or hi is None:
            return tallied(self.runs_between(lo, hi))
        start, end = _hour_around(lo)
        rest = (start, lo) if hi == end else (hi, end) if lo == start and hi < end else None
        if rest is None or hi - lo <= rest[1] - rest[0]:
            return tallied(self.runs_between(lo, hi))
        found = self._stored_hour(start)
        found.add(tallied(self.runs_between(*rest)), -1)
        return found

    def _stored_hour(self, start: datetime) -> Tallies:
        """The stored rows of one hour, of every dimension, with its score rows."""
        found = Tallies()
        end = start + step_of("h")
        where = in_piece(t.rollups, self.project, "h", start, end)
        # Every dimension named, so that the read is a few ranges of the primary key.
        where.append(t.rollups.c.dim.in_(HOURLY_DIMS))
        if self.model is not None:
            where.append(t.rollups.c.model == self.model)
        for row in self.conn.execute(select(t.rollups).where(*where)):
            key = (row.project, row.dim, row.grain, row.period, row.model, row.value)
            found.rows[key] = _tally_of(row)
        s = t.rollup_scores.c
        where = in_piece(t.rollup_scores, self.project, "h", start, end)
        if self.model is not None:
            where.append(s.model == self.model)
        for row in self.conn.execute(select(t.rollup_scores).where(*where)):
            score_key = (row.project, row.grain, row.period, row.model, row.key, row.kind)
            found.scores[(*score_key, row.score)] = int(row.ratings)
        return found

    def _where(
        self, table: Any, dim: str | None = None, grains: Sequence[str] = WINDOW_GRAINS
    ) -> list[ColumnElement[bool]]:
        """The window's stored pieces: each a range of the primary key's prefix
        (project, dim, grain, period), so every piece is an index range scan."""
        ranges = [
            and_(*self._range(table, grain, lo, hi, dim))
            for grain, lo, hi in self.pieces
            if grain in grains
        ]
        return [or_(*ranges)] if ranges else [literal_column("1 = 0")]

    def _range(
        self, table: Any, grain: str, lo: datetime | None, hi: datetime | None, dim: str | None
    ) -> list[ColumnElement[bool]]:
        """One grain's rows between two periods, of one dimension (or all), of the
        window's model (or all)."""
        where = in_piece(table, self.project, grain, lo, hi)
        if dim is not None:
            where.append(table.c.dim == dim)
        if self.model is not None:
            where.append(table.c.model == self.model)
        return where

    def rows(self, dim: str) -> list[tuple[RowKey, Tally]]:
        """Every row of one dimension in the window, with its histograms."""
        found = [
            ((row.project, dim, row.grain, row.period, row.model, row.value), _tally_of(row))
            for row in self.conn.execute(select(t.rollups).where(*self._where(t.rollups, dim)))
        ]
        found += [(key, tally) for key, tally in self.edges.rows.items() if key[1] == dim]
        return found

    def totals(self, dim: str) -> list[tuple[str, str, Tally]]:
        """(model, value, numbers) of one dimension over the whole window, summed in the
        database; no histograms."""
        if self.since is None and ALL_TIME in grains_of(dim):
            return self._totals_until(dim)
        found = self._summed(self._where(t.rollups, dim))
        found += [
            (key[4], key[5], tally) for key, tally in self.edges.rows.items() if key[1] == dim
        ]
        return found

    def _totals_until(self, dim: str) -> list[tuple[str, str, Tally]]:
        """A window with no start: the all-time rows, less what ran from its end on
        (as a rule nothing, or the rest of the hour it ends in)."""
        where = self._range(t.rollups, ALL_TIME, None, None, dim)
        groups = {(model, value): tally for model, value, tally in self._summed(where)}
        if self.until is not None:
            later = WindowRollups(
                self.conn,
                project=self.project,
                since=self.until,
                until=None,
                model=self.model,
                runs_between=self.runs_between,
            )
            for model, value, tally in later.totals(dim):
                groups.setdefault((model, value), Tally()).add_counts(tally.counts.items(), -1)
        return [
            (model, value, tally)
            for (model, value), tally in groups.items()
            if any(tally.counts.values())
        ]

    def _summed(self, where: list[ColumnElement[bool]]) -> list[tuple[str, str, Tally]]:
        c = t.rollups.c
        query = (
            select(
                c.model,
                c.value,
                func.max(c.label).label("label"),
                *(func.sum(c[name]).label(name) for name in COUNTERS),
            )
            .where(*where)
            .group_by(c.model, c.value)
        )
        return [
            (
                row.model,
                row.value,
                Tally(
                    counts={name: int(row._mapping[name] or 0) for name in COUNTERS},
                    label=row.label,
                ),
            )
            for row in self.conn.execute(query)
        ]

    def scores(self) -> list[tuple[tuple[str, str, float], int]]:
        """(key, kind, score) and how many current ratings of it the window holds."""
        c = t.rollup_scores.c
        found: list[tuple[tuple[str, str, float], int]] = [
            ((row.key, row.kind, row.score), int(row.ratings))
            for row in self.conn.execute(
                select(c.key, c.kind, c.score, func.sum(c.ratings).label("ratings"))
                .where(*self._where(t.rollup_scores))
                .group_by(c.key, c.kind, c.score)
            )
        ]
        return found + [(key[4:], n) for key, n in self.edges.scores.items()]

    def values_query(self, dim: str, pieces: Sequence[Piece]) -> Select[Any] | None:
        """A query of the different (model, value) pairs of the users or conversations
        (``dim``) that ran in ``pieces`` (None for no pieces): users of whole hours from
        their hourly rollups, the rest from the runs."""
        r, c = t.runs.c, t.rollups.c
        column = r.user if dim == "user" else r.conversation_id
        parts: list[Select[Any]] = []
        for kind, lo, hi in pieces:
            if dim == "user" and kind == "h":
                where = in_piece(t.rollups, self.project, "h", lo, hi)
                where += [c.dim == dim, c.value != ""]
                where += [c.model == self.model] if self.model is not None else []
                parts.append(select(c.model.label("model"), c.value.label("value")).where(*where))
            else:
                parts.append(
                    select(func.coalesce(r.model, "").label("model"), column.label("value")).where(
                        *self.runs_between(lo, hi), column.is_not(None)
                    )
                )
        if not parts:
            return None
        # Told apart in the database: a day's hourly rows and runs repeat each pair often.
        if len(parts) == 1:
            return parts[0].distinct()
        both = union(*parts).subquery()
        return select(both.c.model, both.c.value)

    def distinct(self, dim: str, *, by_model: bool) -> dict[str, int]:
        """How many different users or conversations the window holds, per model or
        under ``""``: whole days from the rollups, the hours around them and the
        ragged edges from the runs (few there), counted together in one query."""
        c, r = t.rollups.c, t.runs.c
        column = r.user if dim == "user" else r.conversation_id
        parts = [
            select(c.model.label("model"), c.value.label("value")).where(
                c.value != "", *self._where(t.rollups, dim, grains=("d",))
            )
        ]
        parts += [
            select(func.coalesce(r.model, "").label("model"), column.label("value")).where(
                *self.runs_between(lo, hi), column.is_not(None)
            )
            for kind, lo, hi in self.pieces
            if kind != "d"
        ]
        seen = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        if Dialect.of(self.conn).postgres:
            # PostgreSQL hashes distinct rows, but sorts every group for count(DISTINCT).
            keys = [seen.c.model, seen.c.value] if by_model else [seen.c.value]
            unique = select(*keys).distinct().subquery()
            if not by_model:
                return {
                    "": self.conn.execute(select(func.count()).select_from(unique)).scalar_one()
                }
            by = select(unique.c.model, func.count()).group_by(unique.c.model)
            return dict(self.conn.execute(by).all())
        distinct = func.count(func.distinct(seen.c.value))
        if not by_model:
            return {"": self.conn.execute(select(distinct)).scalar_one()}
        query = select(seen.c.model, distinct).group_by(seen.c.model)
        return dict(self.conn.execute(query).all())
