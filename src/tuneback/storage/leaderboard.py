"""The battles a leaderboard counts: every pair of candidates a current comparison judged.

A comparison of two answers is one battle; a ranking of k answers is
k·(k−1)/2 battles, one per pair, the higher-ranked answer winning. Each battle
is read with the reason it does not count, if any, so the board can say how
many it dropped and why; the reason is decided here, in one SQL expression,
for every reader of battles.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from tuneback.storage import tables as t
from tuneback.storage.queries import Queries, RunFilter
from tuneback.storage.store import Store

Votes = Literal["anonymous", "all"]
DropReason = Literal["failed", "self", "no_model", "not_anonymous"]
DROP_REASONS: dict[DropReason, str] = {
    "failed": "a side errored or was cut off",
    "self": "the same model on both sides",
    "no_model": "a side names no model",
    "not_anonymous": "not an anonymous vote (named, resampled or logged without a mode)",
}


@dataclass(frozen=True)
class BattleFilter:
    """Which votes a board counts.

    ``since``/``until`` bound the time of the vote; ``category`` is the
    comparison's ``metadata["category"]``; ``runs`` narrows both candidate runs
    with the runs explorer's own filter (its tag, for instance).
    """

    project: str
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    runs: RunFilter = field(default_factory=RunFilter)
    votes: Votes = "anonymous"


@dataclass(frozen=True)
class BattleColumns:
    """Counted battles as parallel columns, oldest vote first."""

    comparison_id: Sequence[str]
    model_a: Sequence[str]
    model_b: Sequence[str]
    outcome: Sequence[str]
    len_a: Sequence[int]
    len_b: Sequence[int]
    dropped: dict[str, int]
    """Battles left out, per :data:`DropReason`."""

    def __len__(self) -> int:
        return len(self.comparison_id)


class BattleReader:
    """Reads battles from one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    def _select(self, f: BattleFilter, columns: Callable[..., list[Any]]) -> Any:
        c, cr = t.comparisons.c, t.comparison_runs
        side_a, side_b = cr.alias("side_a"), cr.alias("side_b")
        run_a, run_b = t.runs.alias("run_a"), t.runs.alias("run_b")
        ra, rb = run_a.c, run_b.c
        reason = case(
            (or_(ra.status != "ok", rb.status != "ok"), "failed"),
            (or_(c.mode == "resample", ra.model == rb.model), "self"),
            (or_(ra.model.is_(None), rb.model.is_(None)), "no_model"),
            *(
                [(or_(c.mode.is_(None), c.mode != "anonymous"), "not_anonymous")]
                if f.votes == "anonymous"
                else []
            ),
            else_=None,
        ).label("reason")
        # Every pair of a comparison's candidates, in side order: one for a
        # judged pair, k·(k−1)/2 for a ranking of k.
        joined = (
            t.comparisons.join(side_a, side_a.c.comparison_id == c.id)
            .join(
                side_b,
                and_(side_b.c.comparison_id == c.id, side_b.c.position > side_a.c.position),
            )
            .join(run_a, ra.id == side_a.c.run_id)
            .join(run_b, rb.id == side_b.c.run_id)
        )
        where: list[ColumnElement[bool]] = [c.project == f.project, c.superseded_by.is_(None)]
        if f.since is not None:
            where.append(c.created_at >= f.since)
        if f.until is not None:
            where.append(c.created_at < f.until)
        if f.category is not None:
            where.append(c.metadata["category"].as_string() == f.category)
        if f.runs != RunFilter():
            wanted = select(t.runs.c.id).where(*Queries(self.store)._conditions(f.runs))
            where += [ra.id.in_(wanted), rb.id.in_(wanted)]
        return (
            select(*columns(c, ra, rb, reason))
            .select_from(joined)
            .where(*where)
            .order_by(c.created_at, c.id, side_a.c.position, side_b.c.position)
        )

    def read(self, f: BattleFilter, *, lengths: bool = True) -> BattleColumns:
        """Every battle of the filter, oldest first, and how many were left out and why.

        Judged pairs (one row per comparison, the bulk at scale) come as bare
        columns; rankings are read apart and expanded into their pairs. Without
        ``lengths`` the answers' lengths read as 0 and their text is not touched.
        """

        def length(output: Any) -> Any:
            return func.coalesce(func.length(output), 0) if lengths else literal(0)

        def pairs(c: Any, ra: Any, rb: Any, reason: Any) -> list[Any]:
            return [
                c.id,
                ra.model,
                rb.model,
                c.outcome,
                length(ra.output),
                length(rb.output),
                reason,
                # The time as the database keeps it, unconverted: only compared.
                type_coerce(c.created_at, String),
            ]

        def ranked(c: Any, ra: Any, rb: Any, reason: Any) -> list[Any]:
            return [*pairs(c, ra, rb, reason), ra.id, rb.id, cast(c.ranking, Text)]

        judged = self._select(f, pairs).where(t.comparisons.c.outcome.is_not(None))
        rankings = self._select(f, ranked).where(t.comparisons.c.outcome.is_(None))
        with self.engine.connect() as conn:
            rows: Sequence[Any] = conn.execute(judged).all()
            extra = conn.execute(rankings).all()
        if extra:
            # The rankings' pairs join the judged pairs in time order (for Elo).
            expanded = [
                (*row[:3], _ranked_outcome(row[8], row[9], row[10]), *row[4:8]) for row in extra
            ]
            rows = list(heapq.merge(rows, expanded, key=lambda row: (row[7], row[0])))
        dropped = dict(Counter(row[6] for row in rows if row[6] is not None))
        if dropped:
            rows = [row for row in rows if row[6] is None]
        if not rows:
            return BattleColumns((), (), (), (), (), (), dropped)
        ids, model_a, model_b, outcome, len_a, len_b, _, _ = zip(*rows, strict=True)
        return BattleColumns(ids, model_a, model_b, outcome, len_a, len_b, dropped)

    def listing(
        self, f: BattleFilter, *, model: str | None = None, opponent: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The newest battles (counted or not) of ``model`` (against ``opponent``), with the
        reason each was left out."""

        def columns(c: Any, ra: Any, rb: Any, reason: Any) -> list[Any]:
            return [
                c.id, c.created_at, c.outcome, c.ranking, c.mode, c.user,
                ra.id.label("run_a"), rb.id.label("run_b"),
                ra.model.label("model_a"), rb.model.label("model_b"), reason,
            ]  # fmt: skip

        query = self._select(f, columns)
        sides = query.selected_columns
        if model is not None:
            either = or_(sides.model_a == model, sides.model_b == model)
            if opponent is not None:
                either = or_(
                    and_(sides.model_a == model, sides.model_b == opponent),
                    and_(sides.model_a == opponent, sides.model_b == model),
                )
            query = query.where(either)
        query = query.order_by(None).order_by(sides.created_at.desc(), sides.id.desc())
        with self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query.limit(limit)).mappings()]
        for row in rows:
            if row["outcome"] is None and row["ranking"] is not None:
                row["outcome"] = _ranked_outcome(row["run_a"], row["run_b"], row["ranking"])
                row["ranked"] = True
            else:
                row["ranked"] = False
            row.pop("ranking")
        return rows


def _ranked_outcome(run_a: str, run_b: str, ranking: Any) -> str:
    """Which side of a pair a ranking puts first: "a" or "b"."""
    order = json.loads(ranking) if isinstance(ranking, str) else ranking
    return "a" if order.index(run_a) < order.index(run_b) else "b"
