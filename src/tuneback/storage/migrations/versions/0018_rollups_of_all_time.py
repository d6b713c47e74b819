"""Each user's rollup numbers over all time, one row per project, model and user.

Summed from the daily user rows already stored (grain ``a``, period the epoch,
no histograms); from then on the projector keeps them with the others. Ratings
by user over all time become one row per user instead of one per user and day.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

Frozen: defines its own column types and tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value


rollups = sa.table(
    "rollups",
    *(sa.column(n) for n in ("project", "dim", "grain", "model", "value", "label")),
    *(sa.column(n) for n in (*COUNTERS, "latency", "ttft")),
    sa.column("period", UtcDateTime()),
)


def upgrade() -> None:
    conn = op.get_bind()
    r = rollups.c
    empty: sa.ColumnElement[Any] = sa.literal_column(
        "'{}'::jsonb" if conn.dialect.name == "postgresql" else "'{}'"
    )
    per_user = (
        sa.select(
            r.project,
            r.dim,
            sa.literal("a"),
            sa.literal(EPOCH, UtcDateTime()),
            r.model,
            r.value,
            sa.func.max(r.label),
            *(sa.func.sum(r[name]) for name in COUNTERS),
            empty,
            empty,
        )
        .where(r.dim == "user", r.grain == "d")
        .group_by(r.project, r.dim, r.model, r.value)
    )
    columns = ["project", "dim", "grain", "period", "model", "value", "label", *COUNTERS]
    conn.execute(rollups.insert().from_select([*columns, "latency", "ttft"], per_user))


def downgrade() -> None:
    op.execute(rollups.delete().where(rollups.c.grain == "a"))
