"""Reads of the projections by id and by owner: what the store's getters and lists answer.

The richer queries (filters, pages, exports, the dashboard) live beside this in
their own modules; these are the plain ones every service needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.exc import DBAPIError

from tuneback.domain import (
    ComparisonRecord,
    Conversation,
    DatasetItemRecord,
    DatasetRecord,
    FeedbackRecord,
    Message,
    Project,
    ProjectSettings,
    Run,
)
from tuneback.errors import NotFoundError, StorageError
from tuneback.storage import migrate
from tuneback.storage import tables as t
from tuneback.storage.engine import Database
from tuneback.storage.projections import count_rows
from tuneback.storage.relay import read_positions
from tuneback.storage.rows import (
    FeedbackConfigType,
    feedback_config_from_json,
    feedback_from_row,
    model_from_row,
)

M = TypeVar("M", bound=BaseModel)


class Reads:
    """Plain reads on one database, each on a connection of its own, as domain objects."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def _one(self, table: Table, model: type[M], key: str, what: str) -> M:
        with self._database.reading() as conn:
            row = conn.execute(select(table).where(table.c.id == key)).mappings().first()
        if row is None:
            raise NotFoundError(f"no {what} with id {key}")
        return model_from_row(model, row)

    def _all(self, query: Any, model: type[M]) -> list[M]:
        with self._database.reading() as conn:
            return [model_from_row(model, r) for r in conn.execute(query).mappings()]

    def _feedback(self, query: Any) -> list[FeedbackRecord]:
        with self._database.reading() as conn:
            return [feedback_from_row(r) for r in conn.execute(query).mappings()]

    # -- projects ---------------------------------------------------------------------

    def get_project(self, name: str) -> Project:
        with self._database.reading() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.name == name)).first()
        if row is None:
            return Project(name=name)
        return Project(
            name=row.name,
            created_at=row.created_at,
            settings=ProjectSettings.model_validate(row.settings or {}),
        )

    def list_projects(self) -> list[str]:
        with self._database.reading() as conn:
            return list(
                conn.execute(select(t.projects.c.name).order_by(t.projects.c.name)).scalars()
            )

    def feedback_configs(self, project: str) -> dict[str, FeedbackConfigType]:
        c = t.feedback_configs.c
        query = select(c.key, c.config).where(c.project == project).order_by(c.key)
        with self._database.reading() as conn:
            return {row.key: feedback_config_from_json(row.config) for row in conn.execute(query)}

    # -- conversations and runs ---------------------------------------------------------

    def get_conversation(self, conversation_id: str) -> Conversation:
        return self._one(t.conversations, Conversation, conversation_id, "conversation")

    def list_conversations(
        self, project: str, *, user: str | None, limit: int, deleted: bool | None
    ) -> list[Conversation]:
        c = t.conversations.c
        query = select(t.conversations).where(c.project == project)
        if user is not None:
            query = query.where(c.user == user)
        if deleted is not None:
            query = query.where(c.deleted_at.is_not(None) if deleted else c.deleted_at.is_(None))
        query = query.order_by(c.started_at.desc(), c.id.desc()).limit(limit)
        return self._all(query, Conversation)

    def conversation_messages(self, conversation_id: str) -> list[Message]:
        c = t.messages.c
        query = (
            select(t.messages)
            .where(c.conversation_id == conversation_id)
            .order_by(c.created_at, c.id)
        )
        return self._all(query, Message)

    def first_user_messages(self, conversation_ids: Sequence[str]) -> dict[str, str]:
        if not conversation_ids:
            return {}
        c = t.messages.c
        first = (
            select(c.conversation_id, func.min(c.created_at).label("created_at"))
            .where(c.conversation_id.in_(list(conversation_ids)), c.role == "user")
            .group_by(c.conversation_id)
            .subquery()
        )
        query = (
            select(c.conversation_id, c.content)
            .join(
                first,
                (first.c.conversation_id == c.conversation_id)
                & (first.c.created_at == c.created_at),
            )
            .where(c.role == "user")
        )
        with self._database.reading() as conn:
            return {row.conversation_id: row.content for row in conn.execute(query)}

    def conversation_runs(self, conversation_id: str) -> list[Run]:
        c = t.runs.c
        query = (
            select(t.runs).where(c.conversation_id == conversation_id).order_by(c.created_at, c.id)
        )
        return self._all(query, Run)

    def get_message(self, message_id: str) -> Message:
        return self._one(t.messages, Message, message_id, "message")

    def get_run(self, run_id: str) -> Run:
        return self._one(t.runs, Run, run_id, "run")

    def list_runs(self, project: str, *, limit: int) -> list[Run]:
        c = t.runs.c
        query = (
            select(t.runs)
            .where(c.project == project)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )
        return self._all(query, Run)

    # -- feedback and comparisons -------------------------------------------------------

    def get_feedback(self, feedback_id: str) -> FeedbackRecord:
        found = self._feedback(select(t.feedback).where(t.feedback.c.id == feedback_id))
        if not found:
            raise NotFoundError(f"no feedback with id {feedback_id}")
        return found[0]

    def feedback_for_runs(self, run_ids: Sequence[str]) -> list[FeedbackRecord]:
        if not run_ids:
            return []
        c = t.feedback.c
        return self._feedback(
            select(t.feedback)
            .where(c.run_id.in_(list(run_ids)), c.current.is_(True))
            .order_by(c.created_at, c.id)
        )

    def feedback_for_run(self, run_id: str, *, history: bool) -> list[FeedbackRecord]:
        c = t.feedback.c
        query = select(t.feedback).where(c.run_id == run_id).order_by(c.created_at, c.id)
        if not history:
            query = query.where(c.current.is_(True))
        return self._feedback(query)

    def get_comparison(self, comparison_id: str) -> ComparisonRecord:
        return self._one(t.comparisons, ComparisonRecord, comparison_id, "comparison")

    # -- datasets -------------------------------------------------------------------

    def datasets(self, where: Any) -> list[DatasetRecord]:
        d, i = t.datasets.c, t.dataset_items.c
        counts = (
            select(i.dataset_id, func.count().label("item_count")).group_by(i.dataset_id).subquery()
        )
        query = (
            select(t.datasets, func.coalesce(counts.c.item_count, 0).label("item_count"))
            .outerjoin(counts, counts.c.dataset_id == d.id)
            .where(where)
            .order_by(d.name)
        )
        return self._all(query, DatasetRecord)

    def dataset_items(self, dataset_id: str) -> list[DatasetItemRecord]:
        c = t.dataset_items.c
        query = select(t.dataset_items).where(c.dataset_id == dataset_id).order_by(c.version)
        return self._all(query, DatasetItemRecord)

    # -- the database itself -----------------------------------------------------------

    def info(self) -> dict[str, Any]:
        database = self._database

        def work() -> dict[str, Any]:
            with database.reading() as conn:
                counts = {table.name: count_rows(conn, table) for table in t.PROJECTIONS}
                counts["events"] = count_rows(conn, t.events)
                last_seq, relays = relay_lag(conn)
            return {
                "url": database.display_url,
                "dialect": database.dialect.name,
                "revision": migrate.current_revision(database.engine),
                "head": migrate.head_revision(),
                "last_seq": last_seq,
                "relays": relays,
                "rows": counts,
            }

        return database.guard(work, "read")

    def relay_lag(self) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            with self._database.reading() as conn:
                return relay_lag(conn)[1]

        return self._database.guard(work, "read")

    def ping(self) -> None:
        def work() -> None:
            with self._database.reading() as conn:
                conn.execute(text("SELECT 1"))

        try:
            self._database.guard(work, "reach")
        except DBAPIError as exc:
            raise StorageError(
                f"database {self._database.display_url} is not answering: {exc}"
            ) from None


def relay_lag(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
    """The log's last seq, and for each relay its position and how far it is behind."""
    last = conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0)))
    last_seq = int(last.scalar_one())
    relays = [
        {
            "name": r.name,
            "seq": r.seq,
            "behind": last_seq - r.seq,
            "updated_at": r.updated_at,
            # When the oldest event still waiting was committed: the lag in time.
            "waiting_since": conn.execute(
                select(t.events.c.recorded_at).where(t.events.c.seq == r.seq + 1)
            ).scalar(),
        }
        for r in read_positions(conn)
    ]
    return last_seq, relays
