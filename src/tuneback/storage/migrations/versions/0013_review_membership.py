"""Review queue membership is stored: ``review_members`` (queue, run, order, reviews, done).

Existing queues are filled here from their rules and the reviews already
given in them; from then on the projector keeps the table as runs and feedback
arrive.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Frozen: defines its own column types and tables, and its own copy of how a
queue's rule selected runs at this revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
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
        "review_members",
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "run_id", name="pk_review_members"),
    )
    op.create_index(
        "ix_review_members_queue_id_done_created_at_run_id",
        "review_members",
        ["queue_id", "done", "created_at", "run_id"],
    )
    op.create_index("ix_review_members_queue_id_reviews", "review_members", ["queue_id", "reviews"])
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_review_members_queue_id_reviews", table_name="review_members")
    op.drop_index("ix_review_members_queue_id_done_created_at_run_id", table_name="review_members")
    op.drop_table("review_members")


# -- the backfill: a frozen copy of how a queue's rule chose runs at this revision ----

runs = sa.table(
    "runs",
    *(sa.column(name) for name in ("id", "project", "model", "status", "tags")),
    sa.column("created_at", UtcDateTime()),
)
feedback = sa.table(
    "feedback",
    *(sa.column(n) for n in ("run_id", "key", "kind", "score", "comment", "correction")),
    sa.column("current", sa.Boolean()),
)
review_queues = sa.table(
    "review_queues",
    *(sa.column(n) for n in ("id", "project", "reviewers_per_item")),
    sa.column("rule", sa.JSON()),
)
review_feedback = sa.table(
    "review_feedback", *(sa.column(n) for n in ("queue_id", "run_id", "reviewer"))
)
review_members = sa.table(
    "review_members",
    *(sa.column(n) for n in ("queue_id", "run_id", "reviews", "done")),
    sa.column("created_at", UtcDateTime()),
)


def _has_tag(conn: sa.Connection, tag: str) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.cast(runs.c.tags, JSONB).contains(sa.func.jsonb_build_array(tag))
    each = sa.func.json_each(runs.c.tags).table_valued("value")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == tag))


def _rule(conn: sa.Connection, project: str, rule: dict[str, Any]) -> list[Any]:
    f = feedback.c
    where: list[Any] = [runs.c.project == project]
    if rule.get("model") is not None:
        where.append(runs.c.model == rule["model"])
    if rule.get("status") is not None:
        where.append(runs.c.status == rule["status"])
    if rule.get("tag") is not None:
        where.append(_has_tag(conn, rule["tag"]))

    def current(*more: Any) -> Any:
        return sa.exists().where(f.run_id == runs.c.id, f.current.is_(True), *more)

    def carries(kind: str) -> Any:
        return sa.or_(
            f.kind == kind, (f.comment if kind == "comment" else f.correction).is_not(None)
        )

    if rule.get("key") is not None:
        scored = [f.key == rule["key"]]
        if rule.get("min_score") is not None:
            scored.append(f.score >= rule["min_score"])
        if rule.get("max_score") is not None:
            scored.append(f.score <= rule["max_score"])
        if len(scored) > 1:
            scored.append(f.score.is_not(None))
        where.append(current(*scored))
    has = rule.get("has")
    if has == "none":
        where.append(~current())
    elif has == "feedback":
        where.append(current(f.kind != "implicit"))
    elif has is not None:
        where.append(current(carries(has)))
    if rule.get("lacks") is not None:
        where.append(~current(carries(rule["lacks"])))
    return where


def _backfill(conn: sa.Connection) -> None:
    queues = conn.execute(sa.select(review_queues)).mappings().all()
    for queue in queues:
        rule = queue["rule"] if isinstance(queue["rule"], dict) else {}
        matching = sa.select(
            sa.literal(queue["id"]),
            runs.c.id,
            runs.c.created_at,
            sa.literal(0),
            sa.false(),
        ).where(*_rule(conn, queue["project"], rule))
        conn.execute(
            review_members.insert().from_select(
                ["queue_id", "run_id", "created_at", "reviews", "done"], matching
            )
        )
        rf, m = review_feedback.c, review_members.c
        here = rf.queue_id == queue["id"]
        reviewers = (
            sa.select(sa.func.count(sa.func.distinct(rf.reviewer)))
            .where(here, rf.run_id == m.run_id)
            .scalar_subquery()
        )
        conn.execute(
            sa.update(review_members)
            .where(m.queue_id == queue["id"], m.run_id.in_(sa.select(rf.run_id).where(here)))
            .values(reviews=reviewers)
        )
        # Runs reviewed in the queue that its rule no longer matches stay in it.
        count = sa.func.count(sa.func.distinct(rf.reviewer))
        unmatched = (
            sa.select(sa.literal(queue["id"]), rf.run_id, runs.c.created_at, count, sa.false())
            .select_from(review_feedback.join(runs, runs.c.id == rf.run_id))
            .where(
                here,
                rf.run_id.not_in(sa.select(m.run_id).where(m.queue_id == queue["id"])),
            )
            .group_by(rf.run_id, runs.c.created_at)
        )
        conn.execute(
            review_members.insert().from_select(
                ["queue_id", "run_id", "created_at", "reviews", "done"], unmatched
            )
        )
        conn.execute(
            sa.update(review_members)
            .where(m.queue_id == queue["id"])
            .values(done=m.reviews >= int(queue["reviewers_per_item"]))
        )
