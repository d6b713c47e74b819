"""Rollups: the dashboard's numbers per hour and day, kept exact as events arrive.

A run counts once in each rollup row it belongs to: per project, grain (``h``
for its hour, ``d`` for its day), model and dimension (the whole, each of its
tags, its system prompt version, its user, its conversation). A user's runs are
also counted over all time (grain ``a``, without histograms), so ratings by user
over all time read one row per user and model, not one per day they ran. A row holds
counts, token sums, latency and time-to-first-token histograms, and the numbers
of the feedback that is current on it now, so a window that reads whole days
and hours here reads the same as the runs and feedback tables would say.

What a set of runs contributes is computed by one function (:func:`tally`) from
the runs and feedback tables. New runs are counted from the rows just written
(:func:`tally_new_runs`: only their current feedback is read). A rating of a
stored run changes its rows by its own numbers, minus those of the rating it
replaces, plus whether the run is rated at all now and was before
(:func:`rating_changes`): the cost does not grow with a run's ratings. Rarer
changes are applied as the difference between what the runs they touch
contributed before and after: ratings retracted, a conversation that starts
after its runs, a person forgotten. The differences of a transaction are written once, in key order,
with ``INSERT … ON CONFLICT DO UPDATE`` increments, so concurrent writers on
PostgreSQL neither lose increments nor deadlock on each other's rows.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row

from tuneback.domain.stats import bucket_of, prompt_version
from tuneback.storage import tables as t
from tuneback.storage.bulk import BulkInsert
from tuneback.storage.engine import Dialect

Grain = Literal["h", "d"]
"""A grain a window is cut into (see tuneback.storage.rollup_windows)."""
StoredGrain = Literal["h", "d", "a"]
ALL_TIME: Literal["a"] = "a"
"""The grain of one row per value for all time; its period is :data:`EPOCH`."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_GRAINS: tuple[Grain, ...] = ("h", "d")
GRAINS: tuple[StoredGrain, ...] = ("h", "d", ALL_TIME)
"""Every grain a tally counts; each dimension keeps those :data:`DIM_GRAINS` gives it."""
EXPLICIT = ("explicit", "comment", "correction")
"""Feedback kinds that rate an answer (implicit signals are counted but not rated)."""
SCALE = 10**9
"""Score sums are kept in billionths, so increments and decrements add up exactly."""
NO_SCORE = -1.0
"""The score column of feedback without a score (scores are 0..1)."""
DIMS = ("", "tag", "prompt", "user", "conversation")
DIM_GRAINS: dict[str, tuple[StoredGrain, ...]] = {
    "conversation": ("d",),
    "user": (*WINDOW_GRAINS, ALL_TIME),
}
"""Conversations are only counted, and only over whole days: partial days ask the
runs. Users are counted over all time too. The others: hours and days."""


def grains_of(dim: str) -> tuple[StoredGrain, ...]:
    """The grains a dimension's rows are kept in."""
    return DIM_GRAINS.get(dim, WINDOW_GRAINS)


HOURLY_DIMS = tuple(dim for dim in DIMS if "h" in grains_of(dim))
HISTOGRAMS = ("latency", "ttft")
RUN_COUNTERS = ("runs", "errors", "prompt_tokens", "completion_tokens")
FEEDBACK_COUNTERS = (
    "feedback",
    "rated_runs",
    "thumbs",
    "up",
    "corrections",
    "scored",
    "score_sum",
    "score_squares",
    "scored_all",
    "score_sum_all",
)
COUNTERS = RUN_COUNTERS + FEEDBACK_COUNTERS
_CHUNK = 500

RowKey = tuple[str, str, str, datetime, str, str]
"""project, dim, grain, period, model, value: a rollup row's primary key."""
ScoreKey = tuple[str, str, datetime, str, str, str, float]
"""project, grain, period, model, key, kind, score: a score row's primary key."""


def period_of(moment: datetime, grain: StoredGrain) -> datetime:
    """The start of the hour or day a moment falls in, in UTC (all time starts at the epoch)."""
    if grain == ALL_TIME:
        return EPOCH
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment if grain == "h" else moment.replace(hour=0)


def step_of(grain: Grain) -> timedelta:
    return timedelta(hours=1) if grain == "h" else timedelta(days=1)


@dataclass
class Tally:
    """One rollup row's numbers."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    latency: dict[str, int] = field(default_factory=dict)
    ttft: dict[str, int] = field(default_factory=dict)
    label: str | None = None

    def add(self, other: Tally, sign: int = 1) -> None:
        self.add_counts(other.counts.items(), sign)
        self.add_histograms(other, sign)
        self.label = self.label or other.label

    def add_counts(self, counts: Iterable[tuple[str, int]], sign: int = 1) -> None:
        mine = self.counts
        for name, value in counts:
            if value:
                mine[name] += sign * value

    def add_histograms(self, other: Tally, sign: int = 1) -> None:
        for mine, theirs in ((self.latency, other.latency), (self.ttft, other.ttft)):
            for bucket, n in theirs.items():
                mine[bucket] = mine.get(bucket, 0) + sign * n

    def empty(self) -> bool:
        return (
            not any(self.counts.values())
            and not any(self.latency.values())
            and not any(self.ttft.values())
        )


@dataclass
class Tallies:
    """What some runs contribute to the rollups, by row."""

    rows: dict[RowKey, Tally] = field(default_factory=dict)
    scores: dict[ScoreKey, int] = field(default_factory=dict)

    def add(self, other: Tallies, sign: int = 1) -> None:
        for key, tally in other.rows.items():
            self.rows.setdefault(key, Tally()).add(tally, sign)
        for score_key, n in other.scores.items():
            self.scores[score_key] = self.scores.get(score_key, 0) + sign * n

    def changes(self) -> Tallies:
        """Only the rows that change something."""
        return Tallies(
            {k: v for k, v in self.rows.items() if not v.empty()},
            {k: n for k, n in self.scores.items() if n},
        )


# -- what runs contribute ----------------------------------------------------------------


def system_prompt(postgres: bool) -> ColumnElement[Any]:
    """A run's system prompt: its conversation's, else the system message it sent first.

    Needs ``runs`` outer-joined with ``conversations`` on the conversation id.
    """
    inputs = t.runs.c.inputs
    if postgres:
        first = inputs.cast(JSONB)[0]
        role, content = first["role"].astext, first["content"].astext
    else:
        role = func.json_extract(inputs, "$[0].role")
        content = func.json_extract(inputs, "$[0].content")
    return func.coalesce(t.conversations.c.system_prompt, case((role == "system", content)))


def tally(
    conn: Connection, where: Sequence[ColumnElement[bool]], grains: Sequence[StoredGrain] = GRAINS
) -> Tallies:
    """What the runs matching ``where`` and their current feedback contribute now."""
    r, f = t.runs.c, t.feedback.c
    found = Tallies()
    runs = _run_rows(conn, where)
    if runs:
        ratings = conn.execute(
            select(f.run_id, f.key, f.kind, f.score)
            .select_from(t.feedback.join(t.runs, r.id == f.run_id))
            .where(*where, f.current.is_(True))
        )
        _add_runs(found, _records(runs), ratings, grains)
    return found


def tally_runs(conn: Connection, run_ids: Iterable[str]) -> Tallies:
    """What the named runs contribute now (nothing for those that do not exist)."""
    found = Tallies()
    dialect = Dialect.of(conn)
    for chunk in _chunks(run_ids):
        runs = conn.execute(_prepared("runs", dialect), {"ids": chunk}).all()
        if runs:
            ratings = conn.execute(_prepared("ratings", dialect), {"ids": chunk})
            _add_runs(found, _records(runs), ratings, GRAINS)
    return found


def tally_new_runs(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    conversations: Mapping[str, Mapping[str, Any]],
) -> Tallies:
    """What runs contribute as they are inserted, from the rows written.

    :func:`tally_runs` reads the same numbers back from the tables; here only
    their current feedback is read (a rating appended before its run is counted
    with it). The system prompt needs the run's conversation: when its row is
    not among ``conversations`` (those written with the runs), the run is read
    back after all.
    """
    found = Tallies()
    known: list[Any] = []
    unknown: list[str] = []
    make = _record_type((*_COPIED, "ran_at", "prompt"))._make
    for row in rows:
        prompt = _prompt_of(row, conversations)
        if prompt is _UNKNOWN:
            unknown.append(row["id"])
            continue
        ran_at = row["started_at"] or row["created_at"]
        known.append(make([*(row[name] for name in _COPIED), ran_at, prompt]))
    dialect = Dialect.of(conn)
    for start in range(0, len(known), _CHUNK):
        chunk = known[start : start + _CHUNK]
        ratings = conn.execute(_prepared("ratings", dialect), {"ids": [r.id for r in chunk]})
        _add_runs(found, chunk, ratings, GRAINS)
    if unknown:
        found.add(tally_runs(conn, unknown))
    return found


_COPIED = (
    "id",
    "project",
    "model",
    "user",
    "conversation_id",
    "tags",
    "status",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
)
"""What tallying reads of a run that its row holds as stored."""
_UNKNOWN: Any = object()


def _prompt_of(row: Mapping[str, Any], conversations: Mapping[str, Mapping[str, Any]]) -> Any:
    """:func:`system_prompt` of a run's row, or :data:`_UNKNOWN` when it needs the tables."""
    conversation_id = row["conversation_id"]
    if conversation_id is not None:
        conversation = conversations.get(conversation_id)
        if conversation is None:
            return _UNKNOWN  # stored earlier, or never: the tables know
        if conversation["system_prompt"] is not None:
            return conversation["system_prompt"]
    inputs = row["inputs"]
    if not isinstance(inputs, list) or not inputs or not isinstance(inputs[0], dict):
        return None
    first = inputs[0]
    return first.get("content") if first.get("role") == "system" else None


def _add_runs(
    found: Tallies, runs: Sequence[Any], ratings: Iterable[Any], grains: Sequence[StoredGrain]
) -> None:
    """Add ``runs`` (records, see :func:`_records`) with their current ``ratings`` (rows)."""
    by_run: dict[str, list[Any]] = {}
    for row in _records(ratings):
        by_run.setdefault(row.run_id, []).append(row)
    for run in runs:
        _add_run(found, run, by_run.get(run.id, ()), grains)


def _records(rows: Iterable[Row[Any]]) -> list[Any]:
    """Rows as named tuples: read field by field, a row's names cost far more than a
    tuple's, and tallying reads a dozen fields of every run and rating."""
    found = list(rows)
    if not found:
        return found
    make = _record_type(tuple(found[0]._fields))._make
    return [make(row) for row in found]


@functools.cache
def _record_type(fields: tuple[str, ...]) -> Any:
    return collections.namedtuple("Record", fields)


def _run_rows(conn: Connection, where: Sequence[ColumnElement[bool]]) -> Sequence[Any]:
    """The runs matching ``where`` with what places them in rollup rows and their own numbers."""
    return conn.execute(_runs_query(Dialect.of(conn).postgres).where(*where)).all()


def _runs_query(postgres: bool, *extra: ColumnElement[Any]) -> Select[Any]:
    r, conv = t.runs.c, t.conversations
    return select(
        r.id,
        r.project,
        t.run_time().label("ran_at"),
        r.model,
        r.user,
        r.conversation_id,
        r.tags,
        r.status,
        r.latency_ms,
        r.ttft_ms,
        r.prompt_tokens,
        r.completion_tokens,
        system_prompt(postgres).label("prompt"),
        *extra,
    ).select_from(t.runs.outerjoin(conv, conv.c.id == r.conversation_id))


def _prepared(name: Literal["runs", "ratings", "rated"], dialect: Dialect) -> Select[Any]:
    """A query of the runs named by ``ids``, built once per dialect:

    * ``runs``: their rows, as :func:`_run_rows` reads them;
    * ``ratings``: their current feedback;
    * ``rated``: their rows with how many current ratings rate each.
    """
    query = _PREPARED.get((name, dialect.name))
    if query is None:
        query = _PREPARED[(name, dialect.name)] = _build(name, dialect)
    return query


def _build(name: str, dialect: Dialect) -> Select[Any]:
    r, f = t.runs.c, t.feedback.c
    if name == "ratings":
        return select(f.run_id, f.key, f.kind, f.score).where(
            dialect.one_of(f.run_id, "ids"), f.current.is_(True)
        )
    extra: list[ColumnElement[Any]] = []
    if name == "rated":
        # Counted up to ``cap`` only: enough to tell whether the run was rated
        # before, without reading every rating of a popular answer.
        some = (
            select(literal_column("1"))
            .select_from(t.feedback)
            .where(f.run_id == r.id, f.current.is_(True), f.kind.in_(EXPLICIT))
            # In the order of the (run, key, user) index: once the table has
            # statistics, a popular answer's few first ratings are read from the
            # index instead of by a scan of the table until enough turn up.
            .order_by(f.key, f.user)
            .limit(bindparam("cap"))
            .correlate(t.runs)
            .subquery()
        )
        extra.append(select(func.count()).select_from(some).scalar_subquery().label("explicit"))
    return _runs_query(dialect.postgres, *extra).where(dialect.one_of(r.id, "ids"))


_PREPARED: dict[tuple[str, str], Select[Any]] = {}


def _add_run(
    found: Tallies, run: Any, ratings: Iterable[Any], grains: Sequence[StoredGrain]
) -> None:
    own = Tally()
    c = own.counts
    c["runs"] = 1
    c["errors"] = int(run.status == "error")
    c["prompt_tokens"] = run.prompt_tokens or 0
    c["completion_tokens"] = run.completion_tokens or 0
    if run.latency_ms is not None:
        own.latency = {bucket_of(run.latency_ms): 1}
    if run.ttft_ms is not None:
        own.ttft = {bucket_of(run.ttft_ms): 1}
    score_rows: dict[tuple[str, str, float], int] = {}
    for fb in ratings:
        _count_rating(own, score_rows, fb, 1)
        c["rated_runs"] = c["rated_runs"] or int(fb.kind in EXPLICIT)
    _spread(found, run, own, score_rows, grains)


def _count_rating(
    numbers: Tally, score_rows: dict[tuple[str, str, float], int], fb: Any, sign: int
) -> None:
    """Add (or with ``sign`` -1 take away) one current feedback row's numbers, all but
    ``rated_runs``, which depends on the run's other ratings."""
    c = numbers.counts
    explicit = fb.kind in EXPLICIT
    c["feedback"] += sign
    c["thumbs"] += sign * (fb.key == "thumbs")
    c["up"] += sign * (fb.key == "thumbs" and fb.score == 1)
    c["corrections"] += sign * (fb.kind == "correction")
    if fb.score is not None:
        c["scored_all"] += sign
        c["score_sum_all"] += sign * round(fb.score * SCALE)
        if explicit:
            c["scored"] += sign
            c["score_sum"] += sign * round(fb.score * SCALE)
            c["score_squares"] += sign * round(fb.score * fb.score * SCALE)
    slot = (fb.key, fb.kind, NO_SCORE if fb.score is None else float(fb.score))
    score_rows[slot] = score_rows.get(slot, 0) + sign


def _spread(
    found: Tallies,
    run: Any,
    numbers: Tally,
    score_rows: dict[tuple[str, str, float], int],
    grains: Sequence[StoredGrain],
    *,
    whole: bool = True,
) -> None:
    """Add a run's ``numbers`` to every rollup row it belongs to, and its score rows.

    A ``whole`` run (not a change of its ratings) is also counted in its
    conversation's rows, which only count runs.
    """
    model = run.model or ""
    dims: list[tuple[str, str, str | None]] = [
        ("", "", None),
        ("prompt", prompt_version(run.prompt), run.prompt),
        ("user", run.user or "", None),
    ]
    dims += [("tag", str(tag), None) for tag in run.tags or ()]
    if whole and run.conversation_id is not None:
        # Only to count conversations: the rest of its numbers are never read.
        dims.append(("conversation", run.conversation_id, None))
    counts = [(name, value) for name, value in numbers.counts.items() if value]
    timed = bool(numbers.latency or numbers.ttft)
    rows = found.rows
    for grain in grains:
        period = period_of(run.ran_at, grain)
        for dim, value, label in dims:
            if grain not in grains_of(dim):
                continue
            row_key = (run.project, dim, grain, period, model, value)
            row = rows.get(row_key)
            if row is None:
                row = rows[row_key] = Tally()
            if dim == "conversation":
                row.counts["runs"] += 1
                continue
            row.add_counts(counts)
            if timed and grain != ALL_TIME:
                row.add_histograms(numbers)
            row.label = row.label or label
        if grain == ALL_TIME:
            continue  # scores are read by hour and day only
        for (key, kind, score), n in score_rows.items():
            if n:
                slot_key = (run.project, grain, period, model, key, kind, score)
                found.scores[slot_key] = found.scores.get(slot_key, 0) + n


@dataclass(frozen=True)
class Rating:
    """A feedback row's part in the rollups: what changes when it stops or starts counting."""

    run_id: str
    key: str
    kind: str
    score: float | None


def rating_changes(conn: Connection, gained: Sequence[Rating], lost: Sequence[Rating]) -> Tallies:
    """What ratings that became current (``gained``) or stopped being current (``lost``)
    change, read after the change: the rated runs' rows, each rating's own numbers
    and, per run, whether it is rated at all now and was before.

    The cost is one read of the runs, with their current ratings counted from the
    index only as far as needed, however many ratings a run already has.
    """
    by_run: dict[str, list[tuple[Rating, int]]] = {}
    for sign, ratings in ((1, gained), (-1, lost)):
        for rating in ratings:
            by_run.setdefault(rating.run_id, []).append((rating, sign))
    found = Tallies()
    if not by_run:
        return found
    query = _prepared("rated", Dialect.of(conn))
    for chunk in _chunks(by_run):
        # A run had a rating before if it has more now than the batch gave it.
        cap = 1 + max(
            sum(sign > 0 and rating.kind in EXPLICIT for rating, sign in by_run[run_id])
            for run_id in chunk
        )
        for run in _records(conn.execute(query, {"ids": chunk, "cap": cap})):
            numbers = Tally()
            score_rows: dict[tuple[str, str, float], int] = {}
            now = before = run.explicit
            for rating, sign in by_run[run.id]:
                _count_rating(numbers, score_rows, rating, sign)
                before -= sign * (rating.kind in EXPLICIT)
            numbers.counts["rated_runs"] = int(now > 0) - int(before > 0)
            _spread(found, run, numbers, score_rows, GRAINS, whole=False)
    return found


# -- keeping them -------------------------------------------------------------------------


class RollupChanges:
    """The differences one transaction makes, written once at its end in key order."""

    def __init__(self) -> None:
        self.pending = Tallies()

    @contextmanager
    def around(self, conn: Connection, run_ids: set[str]) -> Iterator[None]:
        """Record what the runs contribute before and after the caller changes them."""
        before = tally_runs(conn, run_ids) if run_ids else Tallies()
        yield
        if run_ids:
            self.pending.add(tally_runs(conn, run_ids))
            self.pending.add(before, -1)

    def add_new(
        self,
        conn: Connection,
        rows: Sequence[Mapping[str, Any]],
        conversations: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Count runs just inserted, from their rows (they contributed nothing before)."""
        self.pending.add(tally_new_runs(conn, rows, conversations))

    def rated(self, conn: Connection, gained: Sequence[Rating], lost: Sequence[Rating]) -> None:
        """Count ratings of stored runs that the caller just made current or not current."""
        self.pending.add(rating_changes(conn, gained, lost))

    def write(self, conn: Connection) -> None:
        changes, self.pending = self.pending.changes(), Tallies()
        if changes.rows or changes.scores:
            # Rollup rows are shared by every writer of an hour. They are only
            # locked while the log's tail is held, as forget and rebuild hold it
            # while they change rollups: a writer holding a row while it waits
            # for the tail would deadlock with them.
            Dialect.of(conn).hold_log_tail(conn)
            write_changes(conn, changes)


def write_changes(conn: Connection, changes: Tallies) -> None:
    """Add ``changes`` to the stored rollups; rows that fall to nothing are removed."""
    if changes.rows:
        counted: list[dict[str, Any]] = []
        timed: list[dict[str, Any]] = []
        for key, tally_ in sorted(changes.rows.items()):
            row = {**dict(zip(_ROW_KEY, key, strict=True)), **tally_.counts, "label": tally_.label}
            latency = {b: n for b, n in tally_.latency.items() if n}
            ttft = {b: n for b, n in tally_.ttft.items() if n}
            if latency or ttft:
                timed.append({**row, "latency": latency, "ttft": ttft})
            else:
                counted.append({**row, "latency": {}, "ttft": {}})
        # A change of ratings leaves the histograms as they are: its rows skip
        # merging them, which costs more than all the counters together.
        for rows, histograms in ((counted, False), (timed, True)):
            if rows:
                _upsert(conn, t.rollups, rows, histograms=histograms)
        emptied = [key for key, tally_ in changes.rows.items() if tally_.counts["runs"] < 0]
        if emptied:
            conn.execute(_DELETE_EMPTY_ROW, [_params(key, _ROW_KEY) for key in sorted(emptied)])
        # Imported here: rollup_firsts reads this module's tallies and windows.
        from tuneback.storage import rollup_firsts

        rollup_firsts.keep(conn, changes)
    if changes.scores:
        scores = [
            {**dict(zip(_SCORE_KEY, key, strict=True)), "ratings": n}
            for key, n in sorted(changes.scores.items())
        ]
        _upsert(conn, t.rollup_scores, scores)
        spent = sorted(key for key, n in changes.scores.items() if n < 0)
        if spent:
            conn.execute(_DELETE_EMPTY_SCORE, [_params(key, _SCORE_KEY) for key in spent])


_UPSERTS: dict[tuple[str, str, bool], BulkInsert] = {}


def _upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, histograms: bool = False
) -> None:
    """Add rows' numbers to the stored ones, compiled once per table, dialect and kind."""
    dialect = Dialect.of(conn)
    upsert = _UPSERTS.get((table.name, dialect.name, histograms))
    if upsert is None:
        stmt = dialect.insert(table)
        if table is t.rollups:
            sets: dict[str, Any] = {n: table.c[n] + stmt.excluded[n] for n in COUNTERS}
            sets["label"] = func.coalesce(table.c.label, stmt.excluded.label)
            if histograms:
                for name in HISTOGRAMS:
                    sets[name] = _merged_histogram(dialect.postgres, name)
            key = _ROW_KEY
        else:
            sets = {"ratings": table.c.ratings + stmt.excluded.ratings}
            key = _SCORE_KEY
        statement = stmt.on_conflict_do_update(index_elements=key, set_=sets)
        upsert = BulkInsert(table, conn.dialect, statement)
        _UPSERTS[(table.name, dialect.name, histograms)] = upsert
    upsert.execute(conn, rows)


_ROW_KEY = ["project", "dim", "grain", "period", "model", "value"]
_SCORE_KEY = ["project", "grain", "period", "model", "key", "kind", "score"]
_DELETE_EMPTY_ROW = delete(t.rollups).where(
    *(t.rollups.c[name] == bindparam(f"k_{name}") for name in _ROW_KEY), t.rollups.c.runs <= 0
)
_DELETE_EMPTY_SCORE = delete(t.rollup_scores).where(
    *(t.rollup_scores.c[name] == bindparam(f"k_{name}") for name in _SCORE_KEY),
    t.rollup_scores.c.ratings <= 0,
)


def _params(key: tuple[Any, ...], names: list[str]) -> dict[str, Any]:
    return {f"k_{name}": value for name, value in zip(names, key, strict=True)}


def _merged_histogram(postgres: bool, name: str) -> Any:
    """The stored histogram plus the incoming one, bucket by bucket, in the database.

    Done in SQL so that the increment is as atomic as the counters' ``x = x + n``.
    """
    if postgres:
        return literal_column(
            "(SELECT coalesce(jsonb_object_agg(k, s), '{}'::jsonb) FROM ("
            "SELECT k, sum(v::bigint) AS s FROM ("
            f"SELECT key AS k, value AS v FROM jsonb_each_text(rollups.{name}) UNION ALL "
            f"SELECT key, value FROM jsonb_each_text(excluded.{name})) AS parts "
            "GROUP BY k HAVING sum(v::bigint) <> 0) AS sums)"
        )
    return literal_column(
        "(SELECT json_group_object(k, s) FROM ("
        "SELECT k, sum(v) AS s FROM ("
        f"SELECT key AS k, value AS v FROM json_each(rollups.{name}) UNION ALL "
        f"SELECT key, value FROM json_each(excluded.{name})) "
        "GROUP BY k HAVING sum(v) <> 0))"
    )


def runs_of_feedback(conn: Connection, feedback_ids: Iterable[str]) -> set[str]:
    """The runs that the named feedback rates."""
    f = t.feedback.c
    found: set[str] = set()
    for chunk in _chunks(feedback_ids):
        found.update(
            conn.execute(select(f.run_id).where(f.id.in_(chunk), f.run_id.is_not(None))).scalars()
        )
    return found


def runs_of_conversations(conn: Connection, conversation_ids: Iterable[str]) -> set[str]:
    """The runs stored under the named conversations."""
    r = t.runs.c
    found: set[str] = set()
    for chunk in _chunks(conversation_ids):
        found.update(conn.execute(select(r.id).where(r.conversation_id.in_(chunk))).scalars())
    return found


def rebuild(conn: Connection, project: str | None = None, page: int = 5_000) -> int:
    """Recount every rollup (of one project, or all) from the runs and feedback; returns runs."""
    r = t.runs.c
    scope = [] if project is None else [r.project == project]
    conn.execute(delete(t.rollups).where(*([t.rollups.c.project == project] if project else [])))
    conn.execute(
        delete(t.rollup_scores).where(*([t.rollup_scores.c.project == project] if project else []))
    )
    from tuneback.storage import rollup_firsts

    rollup_firsts.clear(conn, project)
    counted, after = 0, ""
    while True:
        ids = list(
            conn.execute(
                select(r.id).where(*scope, r.id > after).order_by(r.id).limit(page)
            ).scalars()
        )
        if not ids:
            return counted
        found = Tallies()
        for chunk in _chunks(ids, 1_000):
            found.add(tally(conn, [r.id.in_(chunk)]))
        # Pages of runs share hours and days, so rows are upserted, not inserted.
        write_changes(conn, found.changes())
        counted += len(ids)
        after = ids[-1]


def _chunks(values: Iterable[str], size: int = _CHUNK) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]
