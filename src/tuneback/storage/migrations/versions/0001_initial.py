"""The event log and the first projections.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen: this file defines its own column types instead of importing the live
ones, so later changes to tuneback.storage cannot change what it creates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
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


def _created(name: str) -> sa.Column[Any]:
    return sa.Column(name, UtcDateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        _created("recorded_at"),
        sa.Column("payload", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
    )
    op.create_index("ix_events_project_seq", "events", ["project", "seq"])
    op.create_index("ix_events_type_seq", "events", ["type", "seq"])

    op.create_table(
        "projects",
        sa.Column("name", sa.String(64), nullable=False),
        _created("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_projects"),
    )

    op.create_table(
        "conversations",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("user", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("system_prompt", sa.Text()),
        sa.Column("title", sa.Text()),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        _created("started_at"),
        sa.Column("ended_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_index(
        "ix_conversations_project_user_started_at",
        "conversations",
        ["project", "user", "started_at"],
    )
    op.create_index(
        "ix_conversations_project_started_at", "conversations", ["project", "started_at"]
    )

    op.create_table(
        "messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("parent_id", ID),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("run_id", ID),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index(
        "ix_messages_conversation_id_created_at", "messages", ["conversation_id", "created_at"]
    )
    op.create_index("ix_messages_parent_id", "messages", ["parent_id"])

    op.create_table(
        "runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("run_type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("parent_run_id", ID),
        sa.Column("conversation_id", ID),
        sa.Column("message_id", ID),
        sa.Column("user", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("params", JSON, nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("output", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("ttft_ms", sa.Float()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("started_at", UtcDateTime()),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_project_created_at", "runs", ["project", "created_at"])
    op.create_index("ix_runs_project_model_created_at", "runs", ["project", "model", "created_at"])
    op.create_index("ix_runs_project_user_created_at", "runs", ["project", "user", "created_at"])
    op.create_index("ix_runs_conversation_id", "runs", ["conversation_id"])
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_index("ix_runs_message_id", "runs", ["message_id"])

    op.create_table(
        "feedback",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("run_id", ID),
        sa.Column("conversation_id", ID),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("value", JSON),
        sa.Column("comment", sa.Text()),
        sa.Column("correction", sa.Text()),
        sa.Column("user", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        _created("created_at"),
        sa.Column("superseded_by", ID),
        sa.Column("retracted_at", UtcDateTime()),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_run_id_key", "feedback", ["run_id", "key"])
    op.create_index(
        "ix_feedback_project_key_created_at", "feedback", ["project", "key", "created_at"]
    )
    op.create_index(
        "ix_feedback_project_user_created_at", "feedback", ["project", "user", "created_at"]
    )
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])

    op.create_table(
        "comparisons",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("prompt", JSON, nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("ranking", JSON),
        sa.Column("user", sa.String(200)),
        sa.Column("comment", sa.Text()),
        sa.Column("metadata", JSON, nullable=False),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_comparisons"),
    )
    op.create_index("ix_comparisons_project_created_at", "comparisons", ["project", "created_at"])

    op.create_table(
        "comparison_runs",
        sa.Column("comparison_id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("comparison_id", "run_id", name="pk_comparison_runs"),
    )
    op.create_index("ix_comparison_runs_run_id", "comparison_runs", ["run_id"])

    op.create_table(
        "datasets",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("version", sa.Integer(), nullable=False),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
    )
    op.create_index("ix_datasets_project_name", "datasets", ["project", "name"], unique=True)

    op.create_table(
        "dataset_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_run_id", ID),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_items"),
    )
    op.create_index(
        "ix_dataset_items_dataset_id_version", "dataset_items", ["dataset_id", "version"]
    )
    op.create_index("ix_dataset_items_source_run_id", "dataset_items", ["source_run_id"])


def downgrade() -> None:
    for table in (
        "dataset_items",
        "datasets",
        "comparison_runs",
        "comparisons",
        "feedback",
        "runs",
        "messages",
        "conversations",
        "projects",
        "events",
    ):
        op.drop_table(table)
