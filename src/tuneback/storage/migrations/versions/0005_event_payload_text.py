"""Event payloads keep their exact text on PostgreSQL: ``json`` instead of ``jsonb``.

JSONB rewrites numbers as exact decimals: a float such as 1e308 came back as a
309-digit integer, so an acknowledged payload could read back different from
what was written. ``json`` stores the text as given, the way SQLite does; the
projections stay JSONB.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Frozen: names its own types.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN payload TYPE json USING payload::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
