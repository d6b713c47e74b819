"""Each day every user and conversation ran, and how many ran on a day after which day.

``rollup_days`` (per model and over every model) and ``rollup_returns`` are
counted from the daily user and conversation rollups already stored; from then
on the projector keeps them with the rollups. A window's different users and
conversations over its whole days become a sum of a few rows per day.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

Frozen: defines its own column types and tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value


def upgrade() -> None:
    op.create_table(
        "rollup_days",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("every_model", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("period", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "dim", "value", "every_model", "model", "period", name="pk_rollup_days"
        ),
    )
    op.create_table(
        "rollup_returns",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("every_model", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("period", UtcDateTime(), nullable=False),
        sa.Column("previous", UtcDateTime(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project",
            "dim",
            "every_model",
            "model",
            "period",
            "previous",
            name="pk_rollup_returns",
        ),
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("rollup_returns")
    op.drop_table("rollup_days")


rollups = sa.table(
    "rollups",
    *(sa.column(n) for n in ("project", "dim", "grain", "model", "value")),
    sa.column("period", UtcDateTime()),
)
rollup_days = sa.table(
    "rollup_days",
    *(sa.column(n) for n in ("project", "dim", "value", "model")),
    sa.column("every_model", sa.Boolean()),
    sa.column("period", UtcDateTime()),
)
rollup_returns = sa.table(
    "rollup_returns",
    *(sa.column(n) for n in ("project", "dim", "model", "returned")),
    sa.column("every_model", sa.Boolean()),
    sa.column("period", UtcDateTime()),
    sa.column("previous", UtcDateTime()),
)


def _backfill(conn: sa.Connection) -> None:
    r = rollups.c
    daily = [r.grain == "d", r.dim.in_(("user", "conversation")), r.value != ""]
    columns = ["project", "dim", "value", "every_model", "model", "period"]
    per_model = sa.select(r.project, r.dim, r.value, sa.false(), r.model, r.period).where(*daily)
    every_model = (
        sa.select(r.project, r.dim, r.value, sa.true(), sa.literal(""), r.period)
        .where(*daily)
        .group_by(r.project, r.dim, r.value, r.period)
    )
    for part in (per_model, every_model):
        conn.execute(rollup_days.insert().from_select(columns, part))
    d = rollup_days.c
    scope = (d.project, d.dim, d.every_model, d.model)
    previous = sa.func.lag(d.period).over(partition_by=(*scope, d.value), order_by=d.period)
    days = sa.select(*scope, d.period, sa.func.coalesce(previous, d.period).label("previous"))
    days_ = days.subquery()
    s = days_.c
    conn.execute(
        rollup_returns.insert().from_select(
            ["project", "dim", "every_model", "model", "period", "previous", "returned"],
            sa.select(
                s.project, s.dim, s.every_model, s.model, s.period, s.previous, sa.func.count()
            ).group_by(s.project, s.dim, s.every_model, s.model, s.period, s.previous),
        )
    )
