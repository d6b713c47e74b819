"""Runs are found by when they ran: an index on (project, coalesce(started_at, created_at)).

Dashboard windows, the explorer's sort and the lists' time filters all read
``coalesce(started_at, created_at)`` (see ``tables.run_time``); without this
index a window over a big project reads all of the project's runs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Frozen: names its own expression.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NAME = "ix_runs_project_ran_at"


def upgrade() -> None:
    op.create_index(NAME, "runs", ["project", sa.text("coalesce(started_at, created_at)")])


def downgrade() -> None:
    op.drop_index(NAME, table_name="runs")
