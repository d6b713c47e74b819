"""Streaming reads for the exporter: every query here walks its rows without holding them.

Each function opens its own connection and streams one query with
``stream_results`` and ``yield_per``: on PostgreSQL that is a server-side
(named) cursor, on SQLite the driver steps through the result as it is read.
Nothing accumulates in Python, so memory stays flat however many rows there
are; sorting and grouping are left to the database, which spills to disk
instead of growing the process.

A run's *score* is the mean of its current (not superseded, not retracted)
feedback scores, over one key when :attr:`RunSelection.key` is set, else over
every key that carries a score. Feedback without a score (comments, implicit
signals, corrections) never counts toward it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    cast,
    func,
    literal_column,
    or_,
    select,
    tablesample,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Subquery

from tuneback.domain.criteria import RunCriteria
from tuneback.errors import NotFoundError, ValidationError
from tuneback.storage import tables as t
from tuneback.storage.criteria import run_conditions
from tuneback.storage.export_reads import JsonDecoder, export_connection, stream
from tuneback.storage.store import Store


@dataclass(frozen=True)
class RunSelection:
    """Which runs an export reads. Every field narrows; ``None`` means no limit."""

    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    models: tuple[str, ...] = ()
    key: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    dataset_id: str | None = None
    from_id: str | None = None
    """Only runs whose id is at least this (the second half of a split export)."""
    before_id: str | None = None
    """Only runs whose id sorts before this (the first half of a split export)."""
    from_group: str | None = None
    """Rated answers: only groups whose key is at least this (the second half of a split export)."""
    before_group: str | None = None
    """Rated answers: only groups whose key sorts before this (the first half)."""

    def criteria(self) -> RunCriteria:
        """Which runs, as every feature selects them (the score range is the export's own)."""
        return RunCriteria(
            project=self.project,
            since=self.since,
            until=self.until,
            model=self.models,
            dataset_id=self.dataset_id,
        )


class ScoredRun(NamedTuple):
    """A run as the training formats need it: its prompt, answer, score and latest correction.

    A named tuple, not a frozen dataclass: one is made for every run exported, and
    a tuple is built in one step where a frozen dataclass sets each field in turn.
    """

    id: str
    project: str
    model: str | None
    status: str
    inputs: Any
    output: str | None
    score: float | None
    correction: str | None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """A comparison with its candidates' runs that passed the selection (by run id)."""

    id: str
    prompt: list[dict[str, Any]]
    candidates: list[str]
    outcome: str | None
    ranking: list[str] | None
    runs: dict[str, ScoredRun]
    superseded_by: str | None = None


def _half_open(column: Any, low: str | None, high: str | None) -> list[ColumnElement[bool]]:
    """``low <= column < high``, each bound left out when it is ``None`` (a split's halves)."""
    where: list[ColumnElement[bool]] = []
    if low is not None:
        where.append(column >= low)
    if high is not None:
        where.append(column < high)
    return where


def _run_filters(selection: RunSelection) -> list[ColumnElement[bool]]:
    return [
        *run_conditions(selection.criteria()),
        *_half_open(t.runs.c.id, selection.from_id, selection.before_id),
    ]


def _score_filters(score: Any, selection: RunSelection) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if selection.min_score is not None:
        where.append(score >= selection.min_score)
    if selection.max_score is not None:
        where.append(score <= selection.max_score)
    return where


def _rated_run_range(selection: RunSelection) -> list[ColumnElement[bool]]:
    """Feedback on runs in the selection's id range: a split export's half scores only its own."""
    f = t.feedback.c
    return [f.run_id.is_not(None), *_half_open(f.run_id, selection.from_id, selection.before_id)]


def _scores(selection: RunSelection) -> Subquery:
    """Each rated run's score."""
    f = t.feedback.c
    query = (
        select(f.run_id, func.avg(f.score).label("score"))
        .where(f.current.is_(True), f.score.is_not(None), *_rated_run_range(selection))
        .group_by(f.run_id)
    )
    if selection.key is not None:
        query = query.where(f.key == selection.key)
    return query.subquery("scores")


def _latest_corrections(selection: RunSelection) -> Subquery:
    f = t.feedback.c
    ranked = (
        select(
            f.run_id,
            f.correction,
            func.row_number()
            .over(partition_by=f.run_id, order_by=(f.created_at.desc(), f.id.desc()))
            .label("newest"),
        )
        .where(f.current.is_(True), f.kind == "correction", *_rated_run_range(selection))
        .subquery("ranked_corrections")
    )
    return (
        select(ranked.c.run_id, ranked.c.correction)
        .where(ranked.c.newest == 1)
        .subquery("corrections")
    )


def _scored_run_columns(
    score: ColumnElement[Any], correction: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    """The columns of :class:`ScoredRun`, in order (inputs as text, see :class:`JsonDecoder`)."""
    r = t.runs.c
    return [
        r.id,
        r.project,
        r.model,
        r.status,
        cast(r.inputs, Text).label("inputs"),
        r.output,
        score,
        correction,
    ]


def _scored_runs(rows: Iterator[Any]) -> Iterator[ScoredRun]:
    decode = JsonDecoder()
    for row in rows:
        yield ScoredRun(row[0], row[1], row[2], row[3], decode(row[4]), *row[5:])


def _run_score(selection: RunSelection) -> ColumnElement[Any]:
    """The score of the run on the row, looked up in the feedback index for that run alone."""
    r, f = t.runs.c, t.feedback.c
    rated = [f.run_id == r.id, f.current.is_(True), f.score.is_not(None)]
    if selection.key is not None:
        rated.append(f.key == selection.key)
    return select(func.avg(f.score)).where(*rated).scalar_subquery()


def _run_correction() -> ColumnElement[Any]:
    """The latest correction of the run on the row (the one `_latest_corrections` keeps)."""
    r, f = t.runs.c, t.feedback.c
    return (
        select(f.correction)
        .where(f.run_id == r.id, f.current.is_(True), f.kind == "correction")
        .order_by(f.created_at.desc(), f.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _scored_runs_query(selection: RunSelection, dialect: str) -> Select[Any]:
    """The selected runs with their score and latest correction.

    SQLite looks each run's score and correction up as it steps through the runs,
    so the first rows come at once. Joined with every run's score, it first
    builds that whole table and an index on it (1.4 s before the first row at a
    million runs, 0.4 s longer in all). PostgreSQL joins the scores by hash,
    twice as fast there as a lookup per run.
    """
    r = t.runs.c
    if dialect == "sqlite":
        score, correction = _run_score(selection), _run_correction()
        return (
            select(*_scored_run_columns(score.label("score"), correction.label("correction")))
            .select_from(t.runs)
            .where(*_run_filters(selection), *_score_filters(score, selection))
        )
    scores = _scores(selection)
    corrections = _latest_corrections(selection)
    return (
        select(*_scored_run_columns(scores.c.score, corrections.c.correction))
        .select_from(t.runs)
        .outerjoin(scores, scores.c.run_id == r.id)
        .outerjoin(corrections, corrections.c.run_id == r.id)
        .where(*_run_filters(selection), *_score_filters(scores.c.score, selection))
    )


def _corrected_runs_query(selection: RunSelection) -> Select[Any]:
    """The selected runs that carry a current correction, with score and latest correction.

    Read from the corrections to the runs they correct, each corrected run's
    score looked up by its id: few runs are corrected, and computing every
    run's score to keep theirs (or listing the corrected ids once more) read
    the whole feedback table again for each.
    """
    r = t.runs.c
    corrections = _latest_corrections(selection)
    score = _run_score(selection)
    return (
        select(*_scored_run_columns(score.label("score"), corrections.c.correction))
        .select_from(corrections)
        .join(t.runs, r.id == corrections.c.run_id)
        .where(*_run_filters(selection), *_score_filters(score, selection))
    )


def count_runs(store: Store, selection: RunSelection) -> int:
    """How many runs the selection matches (the total a progress bar shows)."""
    query = _scored_runs_query(selection, store.dialect)
    counted = select(func.count()).select_from(query.subquery())
    with export_connection(store) as conn:
        return int(conn.execute(counted).scalar_one())


def middle_run_id(store: Store, selection: RunSelection, *, at_least: int) -> str | None:
    """The id that splits the selected runs into two halves, if there are ``at_least`` of them.

    Counted without the score range, which would cost the scoring work itself.
    """
    r = t.runs.c
    where = _run_filters(selection)
    with export_connection(store) as conn:
        total = _count_selected_runs(conn, selection)
        if total < max(at_least, 2):
            return None
        middle = select(r.id).where(*where).order_by(r.id).offset(total // 2).limit(1)
        found = conn.execute(middle).scalar_one_or_none()  # None: runs were forgotten meanwhile
        return None if found is None else str(found)


def _count_selected_runs(conn: Connection, selection: RunSelection) -> int:
    """How many runs the selection's filters keep, before any score range."""
    counted = select(func.count()).select_from(t.runs).where(*_run_filters(selection))
    return int(conn.execute(counted).scalar_one())


def iter_scored_runs(store: Store, selection: RunSelection) -> Iterator[ScoredRun]:
    """Every selected run with its score and latest correction, in id order."""
    query = _scored_runs_query(selection, store.dialect)
    yield from _scored_runs(stream(store, query.order_by(t.runs.c.id)))


def iter_corrected_runs(store: Store, selection: RunSelection) -> Iterator[ScoredRun]:
    """Only the selected runs that carry a current correction, in id order."""
    query = _corrected_runs_query(selection)
    yield from _scored_runs(stream(store, query.order_by(t.runs.c.id)))


def count_corrected_runs(store: Store, selection: RunSelection) -> int:
    query = _corrected_runs_query(selection)
    with export_connection(store) as conn:
        return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def _group_key(runs: Any = t.runs) -> ColumnElement[Any]:
    """The group of a run of ``runs`` (the table or an alias of it), once joined with its
    assistant message (:func:`_assistant_message`).

    Answers to the same prompt share a group: the user message they answer
    (regenerated answers are siblings under it) or, for runs logged without a
    conversation, the exact inputs. Message ids and JSON text never collide.
    """
    return func.coalesce(t.messages.c.parent_id, cast(runs.c.inputs, String))


def _assistant_message(runs: Any = t.runs) -> ColumnElement[bool]:
    m = t.messages.c
    return and_(m.run_id == runs.c.id, m.role == "assistant")


def _sibling_query(selection: RunSelection, *, counting: bool = False) -> Select[Any]:
    """The rated answers: completed runs with a score, their latest correction and group.

    ``counting`` leaves the corrections out: a run has at most one latest
    correction, so joining it never changes how many rows there are, and it
    cost the count a second pass over the feedback (1.6 s → 0.9 s at a million
    runs on SQLite).
    """
    r = t.runs.c
    scores = _scores(selection)
    group = _group_key()
    where = [
        *_run_filters(selection),
        *_score_filters(scores.c.score, selection),
        r.status == "ok",
        *_half_open(group, selection.from_group, selection.before_group),
    ]
    if counting:
        query = select(r.id).select_from(t.runs).join(scores, scores.c.run_id == r.id)
    else:
        corrections = _latest_corrections(selection)
        query = (
            select(
                *_scored_run_columns(scores.c.score, corrections.c.correction),
                group.label("group_key"),
            )
            .select_from(t.runs)
            .join(scores, scores.c.run_id == r.id)
            .outerjoin(corrections, corrections.c.run_id == r.id)
        )
    return query.outerjoin(t.messages, _assistant_message()).where(*where)


GROUP_SAMPLE = 4_000
"""Runs sampled to find the middle group of a split export's rated answers."""


def middle_group(store: Store, selection: RunSelection, *, at_least: int) -> str | None:
    """A group key near the middle of the selected runs' groups, if there are ``at_least`` runs.

    The median of a sample of about :data:`GROUP_SAMPLE` runs' group keys:
    SQLite reads runs at evenly spaced row ids, PostgreSQL a sample of its rows
    (``TABLESAMPLE BERNOULLI``). Either costs milliseconds where sorting every
    group would cost seconds; a split a little off the middle only makes one
    half a little longer than the other. A sample of whole pages (``SYSTEM``)
    was 35 ms quicker at a million runs but holds runs logged together, which
    share groups: its halves came out as uneven as 408k and 592k runs, and the
    first process waited 1.9 s for the second.
    """
    with export_connection(store) as conn:
        total = _count_selected_runs(conn, selection)
        if total < max(at_least, 2):
            return None
        if store.dialect == "sqlite":
            rowid: ColumnElement[int] = literal_column("runs.rowid", Integer)
            bounds = select(func.min(rowid), func.max(rowid)).select_from(t.runs)
            low, high = conn.execute(bounds).one()
            step = max(1, (high - low) // GROUP_SAMPLE)
            runs: Any = t.runs
            where: list[ColumnElement[bool]] = [rowid.in_(range(low, high + 1, step))]
        else:
            percent = min(100.0, 100.0 * GROUP_SAMPLE / total)
            runs = tablesample(t.runs, func.bernoulli(percent), name="sampled")
            where = []
        criteria = run_conditions(selection.criteria(), runs)
        query = (
            select(_group_key(runs))
            .select_from(runs)
            .outerjoin(t.messages, _assistant_message(runs))
            .where(*where, *criteria, runs.c.status == "ok")
        )
        keys = sorted(key for key in conn.execute(query).scalars() if key is not None)
    # Too few to say where the middle is: one process reads them all.
    return keys[len(keys) // 2] if len(keys) >= min(100, at_least) else None


def count_rated_runs(store: Store, selection: RunSelection) -> int:
    counted = select(func.count()).select_from(_sibling_query(selection, counting=True).subquery())
    with export_connection(store) as conn:
        return int(conn.execute(counted).scalar_one())


def iter_rated_groups(store: Store, selection: RunSelection) -> Iterator[list[ScoredRun]]:
    """Completed, scored runs gathered by the prompt they answer, one group at a time.

    The database sorts by group, so only one group is ever held here.
    """
    query = _sibling_query(selection)
    query = query.order_by(query.selected_columns.group_key, t.runs.c.id)
    group: list[ScoredRun] = []
    for run in _scored_runs(stream(store, query)):
        if group and group[0].group != run.group:
            yield group
            group = []
        group.append(run)
    if group:
        yield group


def count_comparisons(store: Store, selection: RunSelection) -> int:
    query = select(func.count()).select_from(t.comparisons)
    if selection.project is not None:
        query = query.where(t.comparisons.c.project == selection.project)
    with export_connection(store) as conn:
        return int(conn.execute(query).scalar_one())


def iter_comparisons(store: Store, selection: RunSelection) -> Iterator[ComparisonRow]:
    """Comparisons with those of their candidate runs that the selection keeps.

    One row per (comparison, candidate) comes back sorted by comparison, and is
    gathered here one comparison at a time. A candidate the selection drops (or
    that no longer exists) is missing from ``runs``.
    """
    c, cr, r = t.comparisons.c, t.comparison_runs.c, t.runs.c
    scores = _scores(selection)
    kept = (
        select(r.id, r.project, r.model, r.status, r.inputs, r.output, scores.c.score)
        .select_from(t.runs)
        .outerjoin(scores, scores.c.run_id == r.id)
        .where(*_run_filters(selection), *_score_filters(scores.c.score, selection))
        .subquery("kept")
    )
    query = (
        select(
            c.id,
            c.prompt,
            c.candidates,
            c.outcome,
            c.ranking,
            c.superseded_by,
            kept.c.id.label("run_id"),
            kept.c.project.label("run_project"),
            kept.c.model,
            kept.c.status,
            kept.c.inputs,
            kept.c.output,
            kept.c.score,
        )
        .select_from(t.comparisons)
        .join(t.comparison_runs, cr.comparison_id == c.id)
        .outerjoin(kept, kept.c.id == cr.run_id)
        .order_by(c.id, cr.position)
    )
    if selection.project is not None:
        query = query.where(c.project == selection.project)
    current: ComparisonRow | None = None
    for row in stream(store, query):
        if current is None or current.id != row.id:
            if current is not None:
                yield current
            current = ComparisonRow(
                id=row.id,
                prompt=list(row.prompt or []),
                candidates=[candidate["run_id"] for candidate in row.candidates],
                outcome=row.outcome,
                ranking=row.ranking,
                runs={},
                superseded_by=row.superseded_by,
            )
        if row.run_id is not None:
            current.runs[row.run_id] = ScoredRun(
                row.run_id,
                row.run_project,
                row.model,
                row.status,
                row.inputs,
                row.output,
                row.score,
                None,
            )
    if current is not None:
        yield current


def _run_table_query(selection: RunSelection, *, history: bool) -> Select[Any]:
    r, f = t.runs.c, t.feedback.c
    scores = _scores(selection)
    on = f.run_id == r.id
    if not history:
        on = and_(on, f.current.is_(True))
    feedback_columns = [
        column.label(f"feedback_{column.key}")
        for column in (
            f.id,
            f.key,
            f.kind,
            f.score,
            f.value,
            f.comment,
            f.correction,
            f.user,
            f.source,
            f.created_at,
            f.current,
        )
    ]
    return (
        select(t.runs, scores.c.score, *feedback_columns)
        .select_from(t.runs)
        .outerjoin(scores, scores.c.run_id == r.id)
        .outerjoin(t.feedback, on)
        .where(*_run_filters(selection), *_score_filters(scores.c.score, selection))
        .order_by(r.id, f.created_at, f.id)
    )


def iter_run_table(
    store: Store, selection: RunSelection, *, history: bool = False
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each selected run's columns and score, with its feedback (current only, or all)."""
    run_keys = [column.key for column in t.runs.columns] + ["score"]
    current: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    for row in stream(store, _run_table_query(selection, history=history)):
        data = row._mapping
        if current is None or current[0]["id"] != data["id"]:
            if current is not None:
                yield current
            current = ({key: data[key] for key in run_keys}, [])
        if data["feedback_id"] is not None:
            current[1].append(
                {
                    key.removeprefix("feedback_"): value
                    for key, value in data.items()
                    if key.startswith("feedback_")
                }
            )
    if current is not None:
        yield current


def _feedback_table_query(selection: RunSelection, *, history: bool) -> Select[Any]:
    f, r = t.feedback.c, t.runs.c
    query = (
        select(
            t.feedback,
            r.model.label("run_model"),
            r.status.label("run_status"),
            r.conversation_id.label("run_conversation_id"),
        )
        .select_from(t.feedback)
        .outerjoin(t.runs, r.id == f.run_id)
        .order_by(f.id)
    )
    where: list[ColumnElement[bool]] = []
    if not history:
        where.append(f.current.is_(True))
    if selection.project is not None:
        where.append(f.project == selection.project)
    if selection.since is not None:
        where.append(f.created_at >= selection.since)
    if selection.until is not None:
        where.append(f.created_at < selection.until)
    if selection.models:
        where.append(r.model.in_(list(selection.models)))
    if selection.key is not None:
        where.append(f.key == selection.key)
    where.extend(_score_filters(f.score, selection))
    if selection.dataset_id is not None:
        items = select(t.dataset_items.c.source_run_id).where(
            t.dataset_items.c.dataset_id == selection.dataset_id
        )
        where.append(f.run_id.in_(items))
    return query.where(*where) if where else query


def count_feedback(store: Store, selection: RunSelection, *, history: bool = False) -> int:
    query = _feedback_table_query(selection, history=history).order_by(None)
    with export_connection(store) as conn:
        return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def iter_feedback_table(
    store: Store, selection: RunSelection, *, history: bool = False
) -> Iterator[dict[str, Any]]:
    """Feedback rows (current only, or with superseded and retracted) with their run's model."""
    for row in stream(store, _feedback_table_query(selection, history=history)):
        yield dict(row._mapping)


def find_dataset(store: Store, name_or_id: str, project: str | None) -> str:
    """The id of the dataset named (or with the id) ``name_or_id``; raises if none or many."""
    d = t.datasets.c
    query = select(d.id, d.project).where(or_(d.id == name_or_id, d.name == name_or_id))
    if project is not None:
        query = query.where(d.project == project)
    with store.engine.connect() as conn:
        found = conn.execute(query.limit(2)).all()
    if not found:
        where = f" in project {project}" if project else ""
        raise NotFoundError(f"no dataset named {name_or_id}{where}")
    if len(found) > 1:
        raise ValidationError(
            f"more than one project has a dataset named {name_or_id}: pass --project"
        )
    return str(found[0].id)


def count_dataset_items(store: Store, dataset_id: str) -> int:
    query = select(func.count()).where(t.dataset_items.c.dataset_id == dataset_id)
    with export_connection(store) as conn:
        return int(conn.execute(query).scalar_one())


def iter_dataset_items(store: Store, dataset_id: str) -> Iterator[ScoredRun]:
    """A dataset's items, in the order they were added, shaped like runs with an output."""
    i = t.dataset_items.c
    query = (
        select(
            i.id,
            i.project,
            i.inputs,
            i.output,
        )
        .where(i.dataset_id == dataset_id)
        .order_by(i.version, i.id)
    )
    for row in stream(store, query):
        yield ScoredRun(row.id, row.project, None, "ok", row.inputs, row.output, None, None)
