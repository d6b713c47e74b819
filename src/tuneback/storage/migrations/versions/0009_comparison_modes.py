"""Comparisons: how the battle was set up, and which re-vote replaced which.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Frozen: defines its own column types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("comparisons") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=True))
        batch.add_column(sa.Column("supersedes", ID, nullable=True))
        batch.add_column(sa.Column("superseded_by", ID, nullable=True))
        batch.create_index(
            "ix_comparisons_project_superseded_by_created_at",
            ["project", "superseded_by", "created_at"],
        )


def downgrade() -> None:
    with op.batch_alter_table("comparisons") as batch:
        batch.drop_index("ix_comparisons_project_superseded_by_created_at")
        batch.drop_column("superseded_by")
        batch.drop_column("supersedes")
        batch.drop_column("mode")
