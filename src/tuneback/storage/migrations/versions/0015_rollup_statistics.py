"""PostgreSQL keeps statistics of the rollups' dimension and grain together.

A dimension's hourly rows far outnumber its daily ones (a user has a row per
hour and model, a conversation only per day), so estimating ``dim = 'user' AND
grain = 'd'`` as if the two were independent made the planner expect hundreds
of thousands of rows for a few thousand and scan the whole table. The
combined most-common-values list tells it how many there are. SQLite plans
these reads by the primary key without statistics, so it needs nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE STATISTICS rollups_dim_grain (mcv) ON dim, grain FROM rollups")
        op.execute("ANALYZE rollups")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS rollups_dim_grain")
