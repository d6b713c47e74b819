"""The one translation of :class:`~tuneback.domain.criteria.RunCriteria` into SQL.

:func:`run_conditions` gives the conditions on the ``runs`` table that a
criteria sets; the explorer, the runs API, review queues, exports and the
dashboard all select runs through it. The conditions are the same on SQLite
and PostgreSQL: the one test that differs (a tag inside the JSON list of
tags) is an expression compiled per dialect, so callers need no dialect.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, Text, cast, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from tuneback.domain.criteria import RunCriteria
from tuneback.storage import tables as t
from tuneback.storage.text_match import contains_text

_fb = t.feedback.c


class _tag_in(FunctionElement[bool]):
    """``tag_in(tags, tag)``: the JSON list ``tags`` holds ``tag``."""

    type = Boolean()
    inherit_cache = True
    name = "tag_in"


@compiles(_tag_in, "postgresql")
def _tag_in_postgresql(element: _tag_in, compiler: SQLCompiler, **kw: Any) -> str:
    tags, tag = element.clauses.clauses
    return compiler.process(cast(tags, JSONB).contains(func.jsonb_build_array(tag)), **kw)


@compiles(_tag_in, "sqlite")
def _tag_in_sqlite(element: _tag_in, compiler: SQLCompiler, **kw: Any) -> str:
    tags, tag = element.clauses.clauses
    each = func.json_each(tags).table_valued("value")
    return compiler.process(exists(select(1).select_from(each).where(each.c.value == tag)), **kw)


def has_tag(tag: str, table: Any = t.runs) -> ColumnElement[bool]:
    """The run (of ``runs`` or an alias of it) carries ``tag``."""
    return _tag_in(table.c.tags, cast(tag, Text))


def _current_feedback(runs: Any, *where: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(_fb.run_id == runs.id, _fb.current.is_(True), *where)


def carries(kind: str) -> ColumnElement[bool]:
    """A feedback row is a comment (or correction): of that kind, or carrying that text.

    A thumbs-down often brings its comment on the same row; the run shows a
    comment either way, so it has one either way.
    """
    text = _fb.comment if kind == "comment" else _fb.correction
    return or_(_fb.kind == kind, text.is_not(None))


def run_conditions(criteria: RunCriteria, table: Any = t.runs) -> list[ColumnElement[bool]]:
    """The conditions on ``runs`` that ``criteria`` sets (an empty list: every run).

    ``table`` is ``runs`` or an alias of it, so a correlated subquery over a
    second copy of the runs filters them by the same rules.
    """
    c, runs = criteria, table.c
    found: list[ColumnElement[bool]] = []
    for column, wanted in (
        (runs.project, c.project),
        (runs.user, c.user),
        (runs.conversation_id, c.conversation_id),
        (runs.status, c.status),
    ):
        if wanted is not None:
            found.append(column == wanted)
    if len(c.model) == 1:
        found.append(runs.model == c.model[0])
    elif c.model:
        found.append(runs.model.in_(list(c.model)))
    if c.since is not None:
        found.append(t.run_time(table) >= c.since)
    if c.until is not None:
        found.append(t.run_time(table) < c.until)
    if c.tag is not None:
        found.append(has_tag(c.tag, table))
    if c.has_feedback is not None:
        found.append(_current_feedback(runs, _fb.key == c.has_feedback))
    if c.min_score is not None or c.max_score is not None:
        scored: list[ColumnElement[bool]] = [_fb.score.is_not(None)]
        if c.score_key is not None:
            scored.append(_fb.key == c.score_key)
        if c.min_score is not None:
            scored.append(_fb.score >= c.min_score)
        if c.max_score is not None:
            scored.append(_fb.score <= c.max_score)
        found.append(_current_feedback(runs, *scored))
    if c.has == "none":
        found.append(~_current_feedback(runs))
    elif c.has == "feedback":
        found.append(_current_feedback(runs, _fb.kind != "implicit"))
    elif c.has is not None:
        found.append(_current_feedback(runs, carries(c.has)))
    if c.lacks is not None:
        found.append(~_current_feedback(runs, carries(c.lacks)))
    if c.min_latency_ms is not None:
        found.append(runs.latency_ms >= c.min_latency_ms)
    if c.max_latency_ms is not None:
        found.append(runs.latency_ms <= c.max_latency_ms)
    tokens = func.coalesce(runs.prompt_tokens, 0) + func.coalesce(runs.completion_tokens, 0)
    if c.min_tokens is not None:
        found.append(tokens >= c.min_tokens)
    if c.max_tokens is not None:
        found.append(tokens <= c.max_tokens)
    if c.text:
        found.append(contains_text(runs.output, cast(runs.inputs, Text), text=c.text))
    if c.dataset_id is not None:
        items = t.dataset_items.c
        sources = select(items.source_run_id).where(
            items.dataset_id == c.dataset_id, items.source_run_id.is_not(None)
        )
        found.append(runs.id.in_(sources))
    return found
