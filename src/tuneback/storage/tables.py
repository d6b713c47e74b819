"""The tables: the append-only event log and the projections that pages read.

Projections are derived data: every row here can be rebuilt by replaying the
``events`` table (see :meth:`tuneback.storage.Store.rebuild`). There are no
foreign keys between projections on purpose: runs and feedback may arrive in any
order (an SDK can send feedback before the run it rates), and replay must be
able to insert tables in any order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

from tuneback.storage.types import JsonType, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = String(64)

events = Table(
    "events",
    metadata,
    # Assigned as max + 1 while the writer holds the log's tail until it commits
    # (see tuneback.storage.commit), so the log is gapless and in commit order:
    # a follower reading "seq > n" can never skip an event.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", ID, nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("project", String(64), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    # Plain JSON (text) on both databases: JSONB would rewrite numbers, and a
    # payload must read back exactly as it was acknowledged.
    Column("payload", JSON, nullable=False),
    Index(None, "project", "seq"),
    Index(None, "type", "seq"),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("settings", JsonType),
)

feedback_configs = Table(
    "feedback_configs",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("config", JsonType, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("user", String(200)),
    Column("model", String(200)),
    Column("system_prompt", Text),
    Column("title", Text),
    Column("tags", JsonType, nullable=False),
    Column("metadata", JsonType, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("deleted_at", UtcDateTime),
    Index(None, "project", "user", "started_at"),
    Index(None, "project", "started_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("project", String(64), nullable=False),
    Column("parent_id", ID),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("run_id", ID),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "conversation_id", "created_at"),
    Index(None, "parent_id"),
    Index(None, "run_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("run_type", String(16), nullable=False),
    Column("name", String(200)),
    Column("parent_run_id", ID),
    Column("conversation_id", ID),
    Column("message_id", ID),
    Column("user", String(200)),
    Column("model", String(200)),
    Column("params", JsonType, nullable=False),
    Column("inputs", JsonType, nullable=False),
    Column("output", Text),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("tags", JsonType, nullable=False),
    Column("metadata", JsonType, nullable=False),
    Column("started_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "created_at"),
    Index(None, "project", "model", "created_at"),
    Index(None, "project", "user", "created_at"),
    Index(None, "conversation_id"),
    Index(None, "parent_run_id"),
    Index(None, "message_id"),
)


def run_time(table: Any = runs) -> Any:
    """When a run happened: its start when the app gave one, else when it was recorded.

    Every time axis, window and sort over runs uses this, so runs logged later
    with their real ``started_at`` land on the day they ran; ``created_at`` stays
    the ingest time. ``table`` is ``runs`` or an alias of it.
    """
    return func.coalesce(table.c.started_at, table.c.created_at)


# The same expression indexed, so a window over a big project stays a range scan.
Index("ix_runs_project_ran_at", runs.c.project, run_time())


feedback = Table(
    "feedback",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("run_id", ID),
    Column("conversation_id", ID),
    Column("key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("score", Float),
    Column("value", JsonType),
    Column("comment", Text),
    Column("correction", Text),
    Column("user", String(200)),
    Column("source", String(16), nullable=False),
    Column("metadata", JsonType, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # History: a newer rating by the same user on the same key and target
    # supersedes this one; a retraction marks it. Current feedback has neither.
    Column("superseded_by", ID),
    Column("retracted_at", UtcDateTime),
    Column("current", Boolean, nullable=False),
    Index(None, "run_id", "key", "user"),
    Index(None, "project", "key", "created_at"),
    Index(None, "project", "user", "created_at"),
    Index(None, "conversation_id"),
)

comparisons = Table(
    "comparisons",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("prompt", JsonType, nullable=False),
    Column("candidates", JsonType, nullable=False),
    Column("outcome", String(16)),
    Column("ranking", JsonType),
    Column("user", String(200)),
    Column("comment", Text),
    Column("mode", String(16)),
    Column("supersedes", ID),
    # Set on this row when a re-vote supersedes it; current comparisons have
    # none, and the history stays in the event log.
    Column("superseded_by", ID),
    Column("metadata", JsonType, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "created_at"),
    Index(None, "project", "superseded_by", "created_at"),
)

comparison_runs = Table(
    "comparison_runs",
    metadata,
    Column("comparison_id", ID, primary_key=True),
    Column("run_id", ID, primary_key=True),
    Column("position", Integer, nullable=False),
    Index(None, "run_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "name", unique=True),
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dataset_id", ID, nullable=False),
    Column("project", String(64), nullable=False),
    Column("inputs", JsonType, nullable=False),
    Column("output", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_run_id", ID),
    Column("metadata", JsonType, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "dataset_id", "version"),
    Index(None, "source_run_id"),
)

review_queues = Table(
    "review_queues",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("rule", JsonType, nullable=False),
    Column("keys", JsonType, nullable=False),
    Column("reviewers_per_item", Integer, nullable=False),
    Column("lease_seconds", Integer, nullable=False),
    Column("created_by", String(200)),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "created_at"),
)

review_feedback = Table(
    "review_feedback",
    metadata,
    # Which feedback was given in which queue: an index over the feedback table
    # (rows whose metadata names a queue), so progress and completion are one
    # indexed count instead of a scan of every feedback row's JSON.
    Column("feedback_id", ID, primary_key=True),
    Column("queue_id", ID, nullable=False),
    Column("run_id", ID, nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "queue_id", "run_id"),
    Index(None, "queue_id", "reviewer"),
)

review_members = Table(
    "review_members",
    metadata,
    # The runs each queue holds: those its rule matches, and those reviewed in
    # it. The projector keeps it as runs and feedback arrive, so a queue's
    # counts and next item are index reads however many runs the project has.
    Column("queue_id", ID, primary_key=True),
    Column("run_id", ID, primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),  # the run's: the queue's order
    Column("reviews", Integer, nullable=False),  # distinct reviewers who answered here
    Column("done", Boolean, nullable=False),  # reviews >= the queue's reviewers_per_item
    Index(None, "queue_id", "done", "created_at", "run_id"),
    Index(None, "queue_id", "reviews"),
)

annotation_tasks = Table(
    "annotation_tasks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("queue_id", ID, nullable=False),
    Column("models", JsonType, nullable=False),
    Column("prompt_count", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    # Counted from the task's run events as they arrive, so every server
    # process sees the same progress.
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("created_by", String(200)),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "project", "created_at"),
)

PROJECTIONS: tuple[Table, ...] = (
    projects,
    feedback_configs,
    conversations,
    messages,
    runs,
    feedback,
    comparisons,
    comparison_runs,
    datasets,
    dataset_items,
    review_queues,
    review_feedback,
    review_members,
    annotation_tasks,
)
"""Every table derived from the event log, in the order rebuild clears and compares them."""

# -- access: not projections, never in the event log ---------------------------------
# Secrets do not belong in a log that anyone who can read events can replay, so
# keys and the token-signing secret live in their own tables, outside rebuild.

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", String(64), nullable=False),
    Column("name", String(200)),
    # SHA-256 of the whole key: keys are long random strings, so a fast hash is
    # enough and lets a lookup be one indexed equality.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    # owner, annotator or user: what the key may do in its project.
    Column("role", String(16), nullable=False, server_default="owner"),
    Index(None, "project"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    # Comma-separated project names; empty means every project.
    Column("projects", Text, nullable=False, server_default=""),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie's random token: a stolen database holds no usable session.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "account",
        String(64),
        ForeignKey("accounts.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# -- review coordination: not projections, never in the event log ---------------------
# Who holds an item right now, and who passed on it, is short-lived coordination
# between reviewers, not a fact worth replaying: the reviews themselves are
# feedback events. Rebuild leaves these tables alone.

review_leases = Table(
    "review_leases",
    metadata,
    Column("queue_id", ID, primary_key=True),
    Column("run_id", ID, primary_key=True),
    Column("reviewer", String(200), nullable=False),
    Column("leased_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "queue_id", "reviewer"),
)

review_skips = Table(
    "review_skips",
    metadata,
    Column("queue_id", ID, primary_key=True),
    Column("run_id", ID, primary_key=True),
    Column("reviewer", String(200), primary_key=True),
    Column("skipped_at", UtcDateTime, nullable=False),
)

# -- stream relays: not projections, never in the event log ---------------------------
# How far each relay has published the log (see tuneback.stream). A relay's
# position is bookkeeping about copies outside this database; rebuild leaves it.

relay_positions = Table(
    "relay_positions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# -- rollups: projections that keep the dashboard's cost flat ------------------------
# Counts, fixed-point sums and latency histograms per project, hour or day, model and
# one dimension (the whole, a tag, a system prompt version, a user, a conversation),
# kept by the projector in the event's transaction (see tuneback.storage.rollups).
# A dashboard window reads whole days and hours here and only its ragged edges from
# the runs, so its cost does not grow with the project. Empty strings stand for "none"
# in key columns, which a primary key cannot hold as NULL.

rollups = Table(
    "rollups",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("dim", String(16), primary_key=True),
    Column("grain", String(1), primary_key=True),
    Column("period", UtcDateTime, primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("value", Text, primary_key=True),
    # What the value stands for when it is a digest (a system prompt's text).
    Column("label", Text),
    Column("runs", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    # {bucket: count} over log-spaced buckets (see tuneback.domain.stats).
    Column("latency", JsonType, nullable=False),
    Column("ttft", JsonType, nullable=False),
    Column("feedback", BigInteger, nullable=False),
    Column("rated_runs", BigInteger, nullable=False),
    Column("thumbs", BigInteger, nullable=False),
    Column("up", BigInteger, nullable=False),
    Column("corrections", BigInteger, nullable=False),
    # Explicit ratings' scores, then every kind's; sums in billionths so that
    # increments and decrements add up exactly in any order.
    Column("scored", BigInteger, nullable=False),
    Column("score_sum", BigInteger, nullable=False),
    Column("score_squares", BigInteger, nullable=False),
    Column("scored_all", BigInteger, nullable=False),
    Column("score_sum_all", BigInteger, nullable=False),
)

rollup_scores = Table(
    "rollup_scores",
    metadata,
    # Current feedback per key, kind and score (-1 for none), by the rated run's time.
    Column("project", String(64), primary_key=True),
    Column("grain", String(1), primary_key=True),
    Column("period", UtcDateTime, primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("score", Float, primary_key=True),
    Column("ratings", BigInteger, nullable=False),
)

rollup_firsts = Table(
    "rollup_firsts",
    metadata,
    # The day each user and conversation first ran, per model and over every model
    # (``every_model``, with model ""), so that how many a window since the start
    # holds is a sum of ``rollup_newcomers`` (see tuneback.storage.rollup_firsts).
    Column("project", String(64), primary_key=True),
    Column("dim", String(16), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("every_model", Boolean, primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("period", UtcDateTime, nullable=False),
)

rollup_newcomers = Table(
    "rollup_newcomers",
    metadata,
    # How many users or conversations first ran on each day: rollup_firsts counted.
    Column("project", String(64), primary_key=True),
    Column("dim", String(16), primary_key=True),
    Column("every_model", Boolean, primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("period", UtcDateTime, primary_key=True),
    Column("newcomers", BigInteger, nullable=False),
)

rollup_days = Table(
    "rollup_days",
    metadata,
    # Each day a user or conversation ran, per model and over every model, in the
    # order that finds a value's days before and after one (see
    # tuneback.storage.rollup_days).
    Column("project", String(64), primary_key=True),
    Column("dim", String(16), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("every_model", Boolean, primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("period", UtcDateTime, primary_key=True),
)

rollup_returns = Table(
    "rollup_returns",
    metadata,
    # How many users or conversations ran on a day (``period``) and last ran before
    # it on ``previous`` (``period`` itself when they never had): the different ones
    # of the whole days from ``a`` on ran on one of them with nothing or a day before
    # ``a`` as their previous day, so they are a sum of a few rows per day.
    Column("project", String(64), primary_key=True),
    Column("dim", String(16), primary_key=True),
    Column("every_model", Boolean, primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("period", UtcDateTime, primary_key=True),
    Column("previous", UtcDateTime, primary_key=True),
    Column("returned", BigInteger, nullable=False),
)

ROLLUPS: tuple[Table, ...] = (
    rollups,
    rollup_scores,
    rollup_firsts,
    rollup_newcomers,
    rollup_days,
    rollup_returns,
)
"""The projections that count rows of the others (see tuneback.storage.rollups)."""
PROJECTIONS = (*PROJECTIONS, *ROLLUPS)
