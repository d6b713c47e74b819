"""Relay positions: how far each stream relay has published the event log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Frozen: defines its own column types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
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
        "relay_positions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_relay_positions"),
    )


def downgrade() -> None:
    op.drop_table("relay_positions")
