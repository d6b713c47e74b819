"""Concurrent writers on PostgreSQL: seq from a sequence, each row's transaction id.

On PostgreSQL the log was numbered under one advisory lock that every writer of
the database waited for. Now ``seq`` comes from the ``events_seq`` sequence and
``tx`` records the writing transaction (``pg_current_xact_id()``); readers
follow the log in ``(tx, seq)`` order below the oldest running transaction.
Rows written before this revision get ``tx = 0``: they are older than any
transaction to come. SQLite gets the column too (always NULL) so both schemas
stay the same.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Frozen: names its own types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("tx", sa.BigInteger(), nullable=True))
    if postgres:
        op.execute("UPDATE events SET tx = 0")
        op.execute(
            "ALTER TABLE events ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
        op.execute("CREATE SEQUENCE events_seq OWNED BY events.seq")
        op.execute(
            "SELECT setval('events_seq', COALESCE((SELECT max(seq) FROM events), 0) + 1, false)"
        )
    op.create_index("ix_events_tx_seq", "events", ["tx", "seq"])


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_events_tx_seq", table_name="events")
    if postgres:
        op.execute("DROP SEQUENCE events_seq")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("tx")
