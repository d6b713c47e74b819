"""Messages are found by the run that wrote them: an index on ``messages.run_id``.

A DPO export pairs each answer with its siblings through the assistant message
its run wrote, and the chat finds a run's message the same way; without this
index SQLite builds a temporary one over every message on each such read, and
PostgreSQL scans them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NAME = "ix_messages_run_id"


def upgrade() -> None:
    op.create_index(NAME, "messages", ["run_id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="messages")
