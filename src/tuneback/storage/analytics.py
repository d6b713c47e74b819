"""Aggregates for the dashboard and ``tuneback stats``, computed in SQL.

Counts, means and percentiles are grouped in the database so a page costs the
same whether the project holds a thousand runs or a million. SQLite has no
percentile function, so one is registered on each connection (see
``sqlite_functions``); PostgreSQL uses ``percentile_cont``.

A window that only names a project, a model and a period is answered from the
rollups (see :mod:`tuneback.storage.rollups`), whose cost does not grow with
the project; anything else is answered from the runs and feedback tables.

Feedback is read as it stands now (superseded and retracted ratings are left
out); a run belongs to the moment it happened (:func:`tables.run_time`: its
``started_at`` when the app gave one, else when it was recorded).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal_column,
    select,
)

from tuneback.domain.criteria import RunCriteria
from tuneback.domain.stats import mean_ci, prompt_version, wilson
from tuneback.storage import tables as t
from tuneback.storage.criteria import run_conditions
from tuneback.storage.rollup_queries import RollupAnswers
from tuneback.storage.rollup_windows import Edges, WindowRollups
from tuneback.storage.rollups import system_prompt
from tuneback.storage.sqlite_functions import percentile as percentile
from tuneback.storage.store import Store

Bucket = Literal["hour", "day"]
SplitBy = Literal["model", "user", "system_prompt", "tag"]
R = TypeVar("R")


@dataclass(frozen=True)
class Window:
    """A project's runs between two moments (``until`` excluded); None means unbounded."""

    project: str
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None

    def criteria(self) -> RunCriteria:
        """The window's runs, as every feature selects runs."""
        return RunCriteria(
            project=self.project,
            since=self.since,
            until=self.until,
            model=() if self.model is None else (self.model,),
        )


_ROLLUP_FILTERS = frozenset({"project", "since", "until", "model"})


class Analytics:
    """Read-only aggregates over one store."""

    def __init__(self, store: Store, *, rollups: bool = True) -> None:
        self.store = store
        self.engine = store.engine
        self.postgres = store.dialect == "postgresql"
        self.rollups = rollups
        self._edges: dict[Window, Edges] | None = None

    @contextmanager
    def at_once(self) -> Iterator[None]:
        """Answers asked inside read each window's ragged edges from the runs once.

        For a page that asks many questions of one window; outside, every
        answer reads the runs as they are at that moment.
        """
        self._edges = {}
        try:
            yield
        finally:
            self._edges = None

    def _from_rollups(
        self, window: Window, work: Callable[[RollupAnswers], R], *, hourly: bool = False
    ) -> R | None:
        """``work`` on the window's rollups, or None when only the raw tables can answer.

        The one rule: rollups hold runs by project, model and time, so they
        answer a window that filters on nothing else.
        """
        filters = {f.name for f in dataclasses.fields(window) if getattr(window, f.name)}
        if not self.rollups or not filters <= _ROLLUP_FILTERS:
            return None
        with self.engine.connect() as conn:
            if self.postgres:
                # Rollup answers are index reads of a few thousand rows; compiling
                # them (PostgreSQL's JIT) took longer than running them.
                conn.exec_driver_sql("SET LOCAL jit = off")
            rollups = WindowRollups(
                conn,
                project=window.project,
                since=window.since,
                until=window.until,
                model=window.model,
                runs_between=lambda lo, hi: self._runs_in(
                    dataclasses.replace(window, since=lo, until=hi)
                ),
                finest="h" if hourly else "d",
                edges=None if self._edges is None else self._edges.get(window),
            )
            if self._edges is not None:
                self._edges[window] = rollups.found_edges
            return work(RollupAnswers(rollups))

    # -- building blocks ---------------------------------------------------------------

    def _pcts(self, column: Any, name: str, fractions: tuple[float, ...]) -> list[Any]:
        """Percentiles of ``column`` labelled ``{name}_p50`` and so on.

        On SQLite they come back packed in one JSON column that :meth:`_rows`
        unpacks: one pass over the values for all of them.
        """
        if self.postgres:
            return [
                func.percentile_cont(f).within_group(column).label(f"{name}_p{round(f * 100)}")
                for f in fractions
            ]
        packed = ",".join(str(f) for f in fractions)
        label = f"{name}{_PACKED}{'_'.join(str(round(f * 100)) for f in fractions)}"
        return [func.tb_percentiles(column, packed).label(label)]

    def _runs_in(self, window: Window) -> list[ColumnElement[bool]]:
        return run_conditions(window.criteria())

    def _bucket(self, column: Any, size: Bucket) -> ColumnElement[Any]:
        if self.postgres:
            return func.date_trunc(size, column)
        pattern = "%Y-%m-%dT%H:00:00" if size == "hour" else "%Y-%m-%dT00:00:00"
        return func.strftime(pattern, column)

    def _rows(self, query: Select[Any]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_unpack(dict(row)) for row in conn.execute(query).mappings()]

    def _run_columns(self) -> list[Any]:
        c = t.runs.c
        return [
            func.count().label("runs"),
            func.count(distinct(c.conversation_id)).label("conversations"),
            func.count(distinct(c.user)).label("users"),
            func.sum(case((c.status == "error", 1), else_=0)).label("errors"),
            *self._pcts(c.latency_ms, "latency", (0.5, 0.9, 0.99)),
            *self._pcts(c.ttft_ms, "ttft", (0.5, 0.99)),
            func.coalesce(func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(c.completion_tokens), 0).label("completion_tokens"),
        ]

    def _feedback_join(self, window: Window, *, by_time: bool = False) -> Any:
        """Current feedback on the window's runs.

        A whole project's feedback needs no join with its runs unless the caller
        groups by the runs' time (``by_time``): skipping it halves the work on
        big projects.
        """
        r, f = t.runs.c, t.feedback.c
        unbounded = window.since is None and window.until is None and window.model is None
        if unbounded and not by_time:
            return t.feedback, and_(
                f.project == window.project, f.current.is_(True), f.run_id.is_not(None)
            )
        return t.feedback.join(t.runs, r.id == f.run_id), and_(
            *self._runs_in(window), f.current.is_(True)
        )

    # -- the numbers -------------------------------------------------------------------

    def summary(self, window: Window) -> dict[str, Any]:
        """Headline numbers for the window."""
        answered = self._from_rollups(window, RollupAnswers.summary)
        if answered is not None:
            runs, fb = answered
        else:
            runs, fb = self._summary_raw(window)
        total = runs["runs"] or 0
        return {
            **runs,
            "errors": runs["errors"] or 0,
            "error_rate": _ratio(runs["errors"] or 0, total),
            "feedback": fb["feedback"],
            "corrections": fb["corrections"] or 0,
            "feedback_rate": _ratio(fb["rated_runs"], total),
            "positive_rate": _ratio(fb["up"] or 0, fb["thumbs"] or 0),
            "positive_ci": wilson(fb["up"] or 0, fb["thumbs"] or 0),
            "thumbs": fb["thumbs"] or 0,
            "mean_score": fb["mean_score"],
            "mean_score_ci": mean_ci(fb["mean_score"], fb["mean_square"], fb["scored"]),
            "scored": fb["scored"],
        }

    def _summary_raw(self, window: Window) -> tuple[dict[str, Any], dict[str, Any]]:
        [runs] = self._rows(select(*self._run_columns()).where(*self._runs_in(window)))
        joined, where = self._feedback_join(window)
        f = t.feedback.c
        explicit = f.kind.in_(["explicit", "comment", "correction"])
        [fb] = self._rows(
            select(
                func.count().label("feedback"),
                func.count(distinct(case((explicit, f.run_id)))).label("rated_runs"),
                func.sum(case((and_(f.key == "thumbs", f.score == 1), 1), else_=0)).label("up"),
                func.sum(case((f.key == "thumbs", 1), else_=0)).label("thumbs"),
                func.avg(case((explicit, f.score))).label("mean_score"),
                func.avg(case((explicit, f.score * f.score))).label("mean_square"),
                func.count(case((explicit, f.score))).label("scored"),
                func.sum(case((f.kind == "correction", 1), else_=0)).label("corrections"),
            )
            .select_from(joined)
            .where(where)
        )
        return runs, fb

    def over_time(self, window: Window, bucket: Bucket = "day") -> list[dict[str, Any]]:
        """Runs, errors, latency and feedback per hour or day, oldest first."""
        answered = self._from_rollups(
            window,
            lambda rollups: rollups.over_time("h" if bucket == "hour" else "d"),
            hourly=bucket == "hour",
        )
        runs, feedback = answered if answered is not None else self._over_time_raw(window, bucket)
        series = []
        for row in runs:
            fb = feedback.get(row["bucket"], {})
            series.append(
                {
                    "bucket": _iso(row["bucket"]),
                    "runs": row["runs"],
                    "errors": row["errors"] or 0,
                    "latency_p50": row["latency_p50"],
                    "latency_p99": row["latency_p99"],
                    "feedback": fb.get("feedback", 0),
                    "positive_rate": _ratio(fb.get("up") or 0, fb.get("thumbs") or 0),
                    "mean_score": fb.get("mean_score"),
                }
            )
        return _fill_gaps(series, window, bucket)

    def _over_time_raw(
        self, window: Window, bucket: Bucket
    ) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]]]:
        r, f = t.runs.c, t.feedback.c
        moment = self._bucket(t.run_time(), bucket)
        when = moment.label("bucket")
        runs = self._rows(
            select(
                when,
                func.count().label("runs"),
                func.sum(case((r.status == "error", 1), else_=0)).label("errors"),
                *self._pcts(r.latency_ms, "latency", (0.5, 0.99)),
            )
            .where(*self._runs_in(window))
            .group_by(moment)
            .order_by(moment)
        )
        joined, where = self._feedback_join(window, by_time=True)
        feedback = {
            row["bucket"]: row
            for row in self._rows(
                select(
                    when,
                    func.count().label("feedback"),
                    func.sum(case((and_(f.key == "thumbs", f.score == 1), 1), else_=0)).label("up"),
                    func.sum(case((f.key == "thumbs", 1), else_=0)).label("thumbs"),
                    func.avg(f.score).label("mean_score"),
                )
                .select_from(joined)
                .where(where)
                .group_by(moment)
            )
        }
        return runs, feedback

    def split(self, window: Window, by: SplitBy) -> list[dict[str, Any]]:
        """The headline numbers per model, user, system prompt version or tag.

        Rollups answer the split by model; the others count distinct users and
        conversations per group, which only the runs can tell.
        """
        answered = None
        if by == "model":
            answered = self._from_rollups(window, RollupAnswers.split_by_model)
        if answered is not None:
            runs, feedback = answered
        else:
            group, source = self._group_column(by)
            runs = self._rows(
                select(group.label("group"), *self._run_columns())
                .select_from(source)
                .where(*self._runs_in(window))
                .group_by(group)
                .order_by(func.count().desc())
                .limit(50)
            )
            feedback = self._feedback_by(window, group, source)
        rows = []
        for row in runs:
            fb = feedback.get(row["group"], {})
            rows.append(
                {
                    **row,
                    "group": _group_name(by, row["group"]),
                    "raw_group": row["group"],
                    "errors": row["errors"] or 0,
                    "error_rate": _ratio(row["errors"] or 0, row["runs"]),
                    "feedback_rate": _ratio(fb.get("rated_runs") or 0, row["runs"]),
                    **_ratings_of(fb),
                }
            )
        return rows

    def ratings(self, window: Window, by: SplitBy = "model") -> list[dict[str, Any]]:
        """Per group: its runs, and the ratings' numbers of :meth:`split` with their intervals.

        Without the latency percentiles and token sums, so it stays cheap where
        a page needs only how the answers were rated.
        """
        answered = self._from_rollups(window, lambda rollups: rollups.ratings(by))
        if answered is not None:
            runs, feedback = answered
        else:
            group, source = self._group_column(by)
            runs = self._rows(
                select(group.label("group"), func.count().label("runs"))
                .select_from(source)
                .where(*self._runs_in(window))
                .group_by(group)
            )
            feedback = self._feedback_by(window, group, source)
        return [
            {
                "group": _group_name(by, row["group"]),
                "raw_group": row["group"],
                "runs": row["runs"],
                **_ratings_of(feedback.get(row["group"], {})),
            }
            for row in runs
        ]

    def _feedback_by(self, window: Window, group: Any, source: Any) -> dict[Any, dict[str, Any]]:
        """Current feedback on the window's runs, counted per group."""
        r, f = t.runs.c, t.feedback.c
        explicit = f.kind.in_(["explicit", "comment", "correction"])
        return {
            row["group"]: row
            for row in self._rows(
                select(
                    group.label("group"),
                    func.count(distinct(case((explicit, f.run_id)))).label("rated_runs"),
                    func.sum(case((and_(f.key == "thumbs", f.score == 1), 1), else_=0)).label("up"),
                    func.sum(case((f.key == "thumbs", 1), else_=0)).label("thumbs"),
                    func.avg(case((explicit, f.score))).label("mean_score"),
                    func.avg(case((explicit, f.score * f.score))).label("mean_square"),
                    func.count(case((explicit, f.score))).label("scored"),
                )
                .select_from(source.join(t.feedback, f.run_id == r.id))
                .where(*self._runs_in(window), f.current.is_(True))
                .group_by(group)
            )
        }

    def _group_column(self, by: SplitBy) -> tuple[Any, Any]:
        r = t.runs.c
        if by == "model":
            return r.model, t.runs
        if by == "user":
            return r.user, t.runs
        if by == "system_prompt":
            conv = t.conversations
            return system_prompt(self.postgres), t.runs.outerjoin(
                conv, conv.c.id == r.conversation_id
            )
        if self.postgres:
            tags = func.jsonb_array_elements_text(r.tags).table_valued("value").alias("tag")
        else:
            tags = func.json_each(r.tags).table_valued("value").alias("tag")
        return tags.c.value, t.runs.join(tags, literal_column("1") == literal_column("1"))

    def keys(self, window: Window) -> list[dict[str, Any]]:
        """Per feedback key: how often, the mean score with its interval, and the distribution."""
        answered = self._from_rollups(window, RollupAnswers.keys)
        stats, spread = answered if answered is not None else self._keys_raw(window)
        by_key: dict[str, list[dict[str, Any]]] = {}
        for row in spread:
            by_key.setdefault(row["key"], []).append({"score": row["score"], "count": row["count"]})
        return [
            {
                **row,
                "mean_score_ci": mean_ci(row["mean_score"], row["mean_square"], row["scored"]),
                "distribution": by_key.get(row["key"], []),
            }
            for row in stats
        ]

    def _keys_raw(self, window: Window) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        joined, where = self._feedback_join(window)
        f = t.feedback.c
        stats = self._rows(
            select(
                f.key.label("key"),
                func.count().label("count"),
                func.count(f.score).label("scored"),
                func.avg(f.score).label("mean_score"),
                func.avg(f.score * f.score).label("mean_square"),
                func.min(f.kind).label("kind"),
            )
            .select_from(joined)
            .where(where)
            .group_by(f.key)
            .order_by(func.count().desc())
        )
        spread = self._rows(
            select(
                f.key.label("key"),
                cast(f.score, Float).label("score"),
                func.count().label("count"),
            )
            .select_from(joined)
            .where(where, f.score.is_not(None))
            .group_by(f.key, f.score)
            .order_by(f.key, f.score)
        )
        return stats, spread


_PACKED = "__pcts__"


def _unpack(row: dict[str, Any]) -> dict[str, Any]:
    """Spread SQLite's packed percentile columns into ``{name}_p50``-style keys."""
    for label in [k for k in row if _PACKED in k]:
        name, _, cuts = label.partition(_PACKED)
        packed = row.pop(label)
        values = json.loads(packed) if packed else [None] * len(cuts.split("_"))
        for cut, value in zip(cuts.split("_"), values, strict=True):
            row[f"{name}_p{cut}"] = value
    return row


def _group_name(by: SplitBy, group: Any) -> Any:
    name = prompt_version(group) if by == "system_prompt" else group
    return name if name is not None else "(none)"


def _ratings_of(fb: dict[str, Any]) -> dict[str, Any]:
    """A group's ratings: thumbs-up rate and mean score, each with its interval."""
    return {
        "positive_rate": _ratio(fb.get("up") or 0, fb.get("thumbs") or 0),
        "positive_ci": wilson(fb.get("up") or 0, fb.get("thumbs") or 0),
        "thumbs": fb.get("thumbs") or 0,
        "mean_score": fb.get("mean_score"),
        "mean_score_ci": mean_ci(
            fb.get("mean_score"), fb.get("mean_square"), fb.get("scored") or 0
        ),
        "scored": fb.get("scored") or 0,
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _iso(value: Any) -> str:
    """A bucket as naive UTC ISO text, the same from both databases."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


_MAX_FILLED = 2_000


def _fill_gaps(series: list[dict[str, Any]], window: Window, size: Bucket) -> list[dict[str, Any]]:
    """Add the empty buckets, so a chart shows a quiet day as zero instead of skipping it.

    The span is the window's when it has a start, else from the first bucket
    with data to the last.
    """
    if not series:
        return series
    step = timedelta(hours=1) if size == "hour" else timedelta(days=1)

    def floor(moment: datetime) -> datetime:
        moment = moment.astimezone(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        return moment if size == "hour" else moment.replace(hour=0)

    have = {row["bucket"]: row for row in series}
    first = datetime.fromisoformat(series[0]["bucket"])
    last = datetime.fromisoformat(series[-1]["bucket"])
    if window.since is not None:
        # A bounded period is drawn whole; an open one ("all time") only where data is.
        first = min(first, floor(window.since))
        if window.until is not None:
            last = max(last, floor(window.until - timedelta(microseconds=1)))
    if (last - first) / step > _MAX_FILLED:
        return series
    filled, moment = [], first
    while moment <= last:
        key = moment.isoformat(timespec="seconds")
        filled.append(
            have.get(key)
            or {
                "bucket": key,
                "runs": 0,
                "errors": 0,
                "latency_p50": None,
                "latency_p99": None,
                "feedback": 0,
                "positive_rate": None,
                "mean_score": None,
            }
        )
        moment += step
    return filled
