"""Review queues, the index of feedback given in them, annotation tasks; leases and skips.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Frozen: defines its own column types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ID = sa.String(64)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value


def upgrade() -> None:
    op.create_table(
        "review_queues",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("rule", JSON, nullable=False),
        sa.Column("keys", JSON, nullable=False),
        sa.Column("reviewers_per_item", sa.Integer(), nullable=False),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_queues"),
    )
    op.create_index(
        "ix_review_queues_project_created_at", "review_queues", ["project", "created_at"]
    )
    op.create_table(
        "review_feedback",
        sa.Column("feedback_id", ID, nullable=False),
        sa.Column("queue_id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("feedback_id", name="pk_review_feedback"),
    )
    op.create_index("ix_review_feedback_queue_id_run_id", "review_feedback", ["queue_id", "run_id"])
    op.create_index(
        "ix_review_feedback_queue_id_reviewer", "review_feedback", ["queue_id", "reviewer"]
    )
    op.create_table(
        "annotation_tasks",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("queue_id", ID, nullable=False),
        sa.Column("models", JSON, nullable=False),
        sa.Column("prompt_count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_tasks"),
    )
    op.create_index(
        "ix_annotation_tasks_project_created_at", "annotation_tasks", ["project", "created_at"]
    )
    op.create_table(
        "review_leases",
        sa.Column("queue_id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("leased_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "run_id", name="pk_review_leases"),
    )
    op.create_index("ix_review_leases_queue_id_reviewer", "review_leases", ["queue_id", "reviewer"])
    op.create_table(
        "review_skips",
        sa.Column("queue_id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("skipped_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "run_id", "reviewer", name="pk_review_skips"),
    )


def downgrade() -> None:
    op.drop_table("review_skips")
    op.drop_index("ix_review_leases_queue_id_reviewer", table_name="review_leases")
    op.drop_table("review_leases")
    op.drop_index("ix_annotation_tasks_project_created_at", table_name="annotation_tasks")
    op.drop_table("annotation_tasks")
    op.drop_index("ix_review_feedback_queue_id_reviewer", table_name="review_feedback")
    op.drop_index("ix_review_feedback_queue_id_run_id", table_name="review_feedback")
    op.drop_table("review_feedback")
    op.drop_index("ix_review_queues_project_created_at", table_name="review_queues")
    op.drop_table("review_queues")
