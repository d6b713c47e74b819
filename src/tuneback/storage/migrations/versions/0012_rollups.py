"""Rollups: the dashboard's counts, sums and latency histograms per hour and day.

The rows are counted from the runs and the feedback already stored, a page of
runs at a time; from then on the projector keeps them in each event's
transaction.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Frozen: defines its own column types and tables.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value


COUNTERS = (
    "runs",
    "errors",
    "prompt_tokens",
    "completion_tokens",
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


def upgrade() -> None:
    counters = [sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS[:4]]
    feedback = [sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS[4:]]
    op.create_table(
        "rollups",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("grain", sa.String(1), nullable=False),
        sa.Column("period", UtcDateTime(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("label", sa.Text()),
        *counters,
        sa.Column("latency", JSON, nullable=False),
        sa.Column("ttft", JSON, nullable=False),
        *feedback,
        sa.PrimaryKeyConstraint(
            "project", "dim", "grain", "period", "model", "value", name="pk_rollups"
        ),
    )
    op.create_table(
        "rollup_scores",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("grain", sa.String(1), nullable=False),
        sa.Column("period", UtcDateTime(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("ratings", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "grain", "period", "model", "key", "kind", "score", name="pk_rollup_scores"
        ),
    )

    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("rollup_scores")
    op.drop_table("rollups")


# -- the backfill: a frozen copy of how rollups were counted at this revision -----------

SCALE = 10**9
GROWTH = 1.04
EXPLICIT = ("explicit", "comment", "correction")
PAGE = 2_000

runs = sa.table(
    "runs",
    *(sa.column(name) for name in ("id", "project", "model", "user", "conversation_id")),
    sa.column("tags", sa.JSON()),
    *(sa.column(name) for name in ("status", "latency_ms", "ttft_ms", "inputs")),
    *(sa.column(name) for name in ("prompt_tokens", "completion_tokens")),
    sa.column("started_at", UtcDateTime()),
    sa.column("created_at", UtcDateTime()),
)
conversations = sa.table("conversations", sa.column("id"), sa.column("system_prompt"))
feedback = sa.table(
    "feedback", *(sa.column(n) for n in ("run_id", "key", "kind", "score", "current"))
)
rollups = sa.table(
    "rollups",
    *(sa.column(n) for n in ("project", "dim", "grain", "model", "value", "label")),
    sa.column("period", UtcDateTime()),
    *(sa.column(n) for n in COUNTERS),
    sa.column("latency", JSON),
    sa.column("ttft", JSON),
)
rollup_scores = sa.table(
    "rollup_scores",
    *(sa.column(n) for n in ("project", "grain", "model", "key", "kind", "score", "ratings")),
    sa.column("period", UtcDateTime()),
)


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _bucket(value: float) -> str:
    return "z" if value <= 0 else str(math.floor(math.log(value) / math.log(GROWTH)))


def _version(prompt: str | None) -> str:
    return "sp-" + hashlib.sha256(prompt.encode()).hexdigest()[:8] if prompt else "(none)"


def _backfill(conn: sa.Connection) -> None:
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        first = runs.c.inputs.cast(JSONB)[0]
        role, content = first["role"].astext, first["content"].astext
    else:
        role = sa.func.json_extract(runs.c.inputs, "$[0].role")
        content = sa.func.json_extract(runs.c.inputs, "$[0].content")
    prompt = sa.func.coalesce(
        conversations.c.system_prompt, sa.case((role == "system", content))
    ).label("prompt")
    after = ""
    while True:
        page = conn.execute(
            sa.select(runs, prompt)
            .select_from(
                runs.outerjoin(conversations, conversations.c.id == runs.c.conversation_id)
            )
            .where(runs.c.id > after)
            .order_by(runs.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        after = page[-1].id
        ratings: dict[str, list[Any]] = {}
        for row in conn.execute(
            sa.select(feedback).where(
                feedback.c.run_id.in_([r.id for r in page]), feedback.c.current.is_(True)
            )
        ):
            ratings.setdefault(row.run_id, []).append(row)
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        scores: dict[tuple[Any, ...], int] = {}
        for run in page:
            _count(run, ratings.get(run.id, []), rows, scores)
        _write(conn, postgres, rows, scores)


def _count(
    run: Any,
    ratings: list[Any],
    rows: dict[tuple[Any, ...], dict[str, Any]],
    scores: dict[tuple[Any, ...], int],
) -> None:
    own = dict.fromkeys(COUNTERS, 0)
    own.update(
        runs=1,
        errors=int(run.status == "error"),
        prompt_tokens=run.prompt_tokens or 0,
        completion_tokens=run.completion_tokens or 0,
    )
    slots: dict[tuple[Any, ...], int] = {}
    for fb in ratings:
        explicit = fb.kind in EXPLICIT
        own["feedback"] += 1
        own["rated_runs"] = own["rated_runs"] or int(explicit)
        own["thumbs"] += fb.key == "thumbs"
        own["up"] += fb.key == "thumbs" and fb.score == 1
        own["corrections"] += fb.kind == "correction"
        if fb.score is not None:
            own["scored_all"] += 1
            own["score_sum_all"] += round(fb.score * SCALE)
            if explicit:
                own["scored"] += 1
                own["score_sum"] += round(fb.score * SCALE)
                own["score_squares"] += round(fb.score * fb.score * SCALE)
        slot = (fb.key, fb.kind, -1.0 if fb.score is None else float(fb.score))
        slots[slot] = slots.get(slot, 0) + 1
    latency = {} if run.latency_ms is None else {_bucket(run.latency_ms): 1}
    ttft = {} if run.ttft_ms is None else {_bucket(run.ttft_ms): 1}
    dims: list[tuple[str, str, str | None, bool]] = [
        ("", "", None, True),
        ("prompt", _version(run.prompt), run.prompt, True),
        ("user", run.user or "", None, True),
    ]
    dims += [("tag", str(tag), None, True) for tag in run.tags or ()]
    if run.conversation_id is not None:
        dims.append(("conversation", run.conversation_id, None, False))
    ran = _moment(run.started_at or run.created_at).replace(minute=0, second=0, microsecond=0)
    model = run.model or ""
    for grain, period in (("h", ran), ("d", ran.replace(hour=0))):
        for dim, value, label, whole in dims:
            if not whole and grain == "h":
                continue  # conversations are only counted over whole days
            key = (run.project, dim, grain, period, model, value)
            row = rows.setdefault(
                key, {**dict.fromkeys(COUNTERS, 0), "latency": {}, "ttft": {}, "label": None}
            )
            row["label"] = row["label"] or label
            if not whole:
                row["runs"] += 1
                continue
            for name in COUNTERS:
                row[name] += own[name]
            for name, histogram in (("latency", latency), ("ttft", ttft)):
                for bucket, n in histogram.items():
                    row[name][bucket] = row[name].get(bucket, 0) + n
        for (key_name, kind, score), n in slots.items():
            score_key = (run.project, grain, period, model, key_name, kind, score)
            scores[score_key] = scores.get(score_key, 0) + n


def _write(
    conn: sa.Connection,
    postgres: bool,
    rows: dict[tuple[Any, ...], dict[str, Any]],
    scores: dict[tuple[Any, ...], int],
) -> None:
    insert = postgresql.insert if postgres else sqlite.insert
    names = ("project", "dim", "grain", "period", "model", "value")
    stmt = insert(rollups)
    sets: dict[str, Any] = {n: rollups.c[n] + stmt.excluded[n] for n in COUNTERS}
    for name in ("latency", "ttft"):
        each = "jsonb_each_text" if postgres else "json_each"
        number = "v::bigint" if postgres else "v"
        merged = (
            f"SELECT k, sum({number}) AS s FROM (SELECT key AS k, value AS v FROM "
            f"{each}(rollups.{name}) UNION ALL SELECT key, value FROM {each}(excluded.{name})) "
            "AS parts GROUP BY k"
        )
        whole = (
            f"(SELECT coalesce(jsonb_object_agg(k, s), '{{}}'::jsonb) FROM ({merged}) AS sums)"
            if postgres
            else f"(SELECT json_group_object(k, s) FROM ({merged}))"
        )
        sets[name] = sa.literal_column(whole)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=list(names), set_=sets),
        [{**dict(zip(names, key, strict=True)), **row} for key, row in sorted(rows.items())],
    )
    if scores:
        score_names = ("project", "grain", "period", "model", "key", "kind", "score")
        stmt = insert(rollup_scores)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=list(score_names),
                set_={"ratings": rollup_scores.c.ratings + stmt.excluded.ratings},
            ),
            [
                {**dict(zip(score_names, key, strict=True)), "ratings": n}
                for key, n in sorted(scores.items())
            ],
        )
