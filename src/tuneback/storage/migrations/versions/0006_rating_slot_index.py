"""Find one person's current rating of an answer by index: (run_id, key, user).

Every rating supersedes the rater's earlier one on the same key, and a locked
key checks for one; with only (run_id, key) indexed, both read every rating of
that answer on that key, which grows with its raters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_feedback_run_id_key_user", "feedback", ["run_id", "key", "user"])
    op.drop_index("ix_feedback_run_id_key", table_name="feedback")


def downgrade() -> None:
    op.create_index("ix_feedback_run_id_key", "feedback", ["run_id", "key"])
    op.drop_index("ix_feedback_run_id_key_user", table_name="feedback")
