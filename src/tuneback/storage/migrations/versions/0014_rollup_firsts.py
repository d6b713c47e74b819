"""The day each user and conversation first ran, and how many first ran each day.

``rollup_firsts`` (per model and over every model) and ``rollup_newcomers`` are
counted from the daily user and conversation rollups already stored; from then
on the projector keeps them with the rollups.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

Frozen: defines its own column types and tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
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
        "rollup_firsts",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("every_model", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("period", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "dim", "value", "every_model", "model", name="pk_rollup_firsts"
        ),
    )
    op.create_table(
        "rollup_newcomers",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("every_model", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("period", UtcDateTime(), nullable=False),
        sa.Column("newcomers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "dim", "every_model", "model", "period", name="pk_rollup_newcomers"
        ),
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("rollup_newcomers")
    op.drop_table("rollup_firsts")


rollups = sa.table(
    "rollups",
    *(sa.column(n) for n in ("project", "dim", "grain", "model", "value")),
    sa.column("period", UtcDateTime()),
)
rollup_firsts = sa.table(
    "rollup_firsts",
    *(sa.column(n) for n in ("project", "dim", "value", "model")),
    sa.column("every_model", sa.Boolean()),
    sa.column("period", UtcDateTime()),
)
rollup_newcomers = sa.table(
    "rollup_newcomers",
    *(sa.column(n) for n in ("project", "dim", "model", "newcomers")),
    sa.column("every_model", sa.Boolean()),
    sa.column("period", UtcDateTime()),
)


def _backfill(conn: sa.Connection) -> None:
    r = rollups.c
    daily = [r.grain == "d", r.dim.in_(("user", "conversation")), r.value != ""]
    first = sa.func.min(r.period)
    columns = ["project", "dim", "value", "every_model", "model", "period"]
    per_model = (
        sa.select(r.project, r.dim, r.value, sa.false(), r.model, first)
        .where(*daily)
        .group_by(r.project, r.dim, r.value, r.model)
    )
    every_model = (
        sa.select(r.project, r.dim, r.value, sa.true(), sa.literal(""), first)
        .where(*daily)
        .group_by(r.project, r.dim, r.value)
    )
    for part in (per_model, every_model):
        conn.execute(rollup_firsts.insert().from_select(columns, part))
    f = rollup_firsts.c
    conn.execute(
        rollup_newcomers.insert().from_select(
            ["project", "dim", "every_model", "model", "period", "newcomers"],
            sa.select(f.project, f.dim, f.every_model, f.model, f.period, sa.func.count()).group_by(
                f.project, f.dim, f.every_model, f.model, f.period
            ),
        )
    )
