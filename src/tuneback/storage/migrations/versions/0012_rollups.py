"""Rollups: the dashboard's counts, sums and latency histograms per hour and day.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Frozen: defines its own column types and tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
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


def downgrade() -> None:
    op.drop_table("rollup_scores")
    op.drop_table("rollups")
