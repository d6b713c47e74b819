"""Reads behind the owner pages' lists: conversations, users, run trees, known values.

Conversations and users are grouped from the runs, so runs an app logged with a
conversation id or a user name count as much as the chat's own. Filters apply
to the runs, as the dashboard's windows do: a page opened from a dashboard
number lists exactly what that number counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Text,
    case,
    cast,
    distinct,
    func,
    select,
)

from tuneback.domain import Run
from tuneback.storage import tables as t
from tuneback.storage.store import Store
from tuneback.storage.text_match import contains_text

TREE_LIMIT = 500
"""A run tree shows at most this many runs."""


@dataclass(frozen=True)
class Slice:
    """Which runs a list is built from; every criterion given must hold."""

    project: str
    user: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    """Words in a run's inputs or answer (conversations) or in the user's name (users)."""


class Browse:
    """Read-only lists over one store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.store = store

    def _runs_in(self, where: Slice) -> list[ColumnElement[bool]]:
        c = t.runs.c
        found: list[ColumnElement[bool]] = [c.project == where.project]
        if where.user is not None:
            found.append(c.user == where.user)
        if where.model is not None:
            found.append(c.model == where.model)
        if where.since is not None:
            found.append(t.run_time() >= where.since)
        if where.until is not None:
            found.append(t.run_time() < where.until)
        return found

    def _feedback_per_run(self) -> Any:
        f = t.feedback.c
        given = f.kind != "implicit"
        return (
            select(
                f.run_id.label("run_id"),
                func.count().label("feedback"),
                func.sum(f.score).label("score_sum"),
                func.count(f.score).label("scored"),
            )
            .where(f.current.is_(True), given, f.run_id.is_not(None))
            .group_by(f.run_id)
            .subquery()
        )

    def _grouped(
        self, key: Any, where: list[ColumnElement[bool]], limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        c = t.runs.c
        fb = self._feedback_per_run()
        happened = t.run_time()
        columns = [
            key.label("key"),
            func.count().label("runs"),
            func.sum(case((c.status == "error", 1), else_=0)).label("errors"),
            func.count(distinct(c.conversation_id)).label("conversations"),
            func.count(distinct(c.model)).label("models"),
            func.max(c.model).label("model"),
            func.max(c.user).label("user"),
            func.min(happened).label("first_at"),
            func.max(happened).label("last_at"),
            func.coalesce(func.sum(fb.c.feedback), 0).label("feedback"),
            (cast(func.sum(fb.c.score_sum), Float) / func.nullif(func.sum(fb.c.scored), 0)).label(
                "mean_score"
            ),
        ]
        query: Select[Any] = (
            select(*columns)
            .select_from(t.runs.outerjoin(fb, fb.c.run_id == c.id))
            .where(*where)
            .group_by(key)
        )
        page = query.order_by(func.max(happened).desc(), key).limit(limit).offset(offset)
        count = select(func.count()).select_from(query.subquery())
        with self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(page).mappings()]
            total = int(conn.execute(count).scalar_one())
        for row in rows:
            # PostgreSQL sums counts as numeric: plain ints and floats, the same from both.
            for name in ("runs", "errors", "conversations", "models", "feedback"):
                row[name] = int(row[name] or 0)
            if row["mean_score"] is not None:
                row["mean_score"] = float(row["mean_score"])
            for moment in ("first_at", "last_at"):
                row[moment] = _utc(row[moment])
        return rows, total

    def conversations(
        self, where: Slice, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Conversations with their runs, feedback and times, latest activity first; and the total.

        Each row has a ``title``: the conversation's own, else its first question;
        ``deleted_at`` says when its owner deleted it from their chat (it stays here).
        """
        c = t.runs.c
        conditions = [*self._runs_in(where), c.conversation_id.is_not(None)]
        if where.text:
            matching = select(c.conversation_id).where(
                c.project == where.project,
                contains_text(c.output, cast(c.inputs, Text), text=where.text),
            )
            conditions.append(c.conversation_id.in_(matching))
        rows, total = self._grouped(c.conversation_id, conditions, limit, offset)
        ids = [row["key"] for row in rows]
        titles: dict[str, str] = {}
        deleted: dict[str, datetime] = {}
        if ids:
            conv = t.conversations.c
            with self.engine.connect() as conn:
                found = list(
                    conn.execute(
                        select(conv.id, conv.title, conv.deleted_at).where(conv.id.in_(ids))
                    ).mappings()
                )
            titles = {row["id"]: row["title"] for row in found if row["title"]}
            deleted = {row["id"]: row["deleted_at"] for row in found if row["deleted_at"]}
            firsts = self.store.first_user_messages([i for i in ids if i not in titles])
            titles = {**firsts, **titles}
            missing = [i for i in ids if i not in titles]
            titles.update(self._first_questions(missing))
        for row in rows:
            row["id"] = row.pop("key")
            row["title"] = titles.get(row["id"]) or "(no question recorded)"
            # Deleted from its owner's chat; the runs and feedback stay, so it stays listed.
            row["deleted_at"] = _utc(deleted.get(row["id"]))
        return rows, total

    def _first_questions(self, conversation_ids: list[str]) -> dict[str, str]:
        """For conversations only apps logged: the last user message of their first run."""
        if not conversation_ids:
            return {}
        c = t.runs.c
        query = (
            select(t.runs)
            .where(c.conversation_id.in_(conversation_ids))
            .order_by(t.run_time(), c.id)
        )
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                run = Run.model_validate(dict(row))
                if run.conversation_id in found or not isinstance(run.inputs, list):
                    continue
                asked = [m.content for m in run.inputs if m.role == "user"]
                if asked:
                    found[run.conversation_id or ""] = asked[-1]
        return found

    def users(
        self, where: Slice, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """People whose runs are in the slice, most recently active first; and the total."""
        c = t.runs.c
        conditions = [*self._runs_in(where), c.user.is_not(None)]
        if where.text:
            conditions.append(contains_text(c.user, text=where.text))
        rows, total = self._grouped(c.user, conditions, limit, offset)
        for row in rows:
            row["name"] = row.pop("key")
        return rows, total

    def known_values(
        self, project: str, column: Literal["model", "user"], *, limit: int = 200
    ) -> list[str]:
        """The distinct models or users a project's runs name, for pickers."""
        col = t.runs.c[column]
        query = (
            select(col)
            .where(t.runs.c.project == project, col.is_not(None))
            .group_by(col)
            .order_by(func.count().desc(), col)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [str(value) for value in conn.execute(query).scalars()]

    def run_tree(self, run: Run) -> list[tuple[Run, int]]:
        """The whole chain ``run`` belongs to, root first, each run with its depth.

        Children follow their parent in the order they happened; a tree larger
        than :data:`TREE_LIMIT` is cut there.
        """
        root, seen = run, {run.id}
        while root.parent_run_id is not None and len(seen) < TREE_LIMIT:
            parent = self._runs([root.parent_run_id], by="id")
            if not parent or parent[0].id in seen or parent[0].project != run.project:
                break
            root = parent[0]
            seen.add(root.id)
        children: dict[str, list[Run]] = {}
        level, count = [root.id], 1
        while level and count < TREE_LIMIT:
            found = [r for r in self._runs(level, by="parent_run_id") if r.project == run.project]
            found = found[: TREE_LIMIT - count]
            count += len(found)
            for child in found:
                children.setdefault(child.parent_run_id or "", []).append(child)
            level = [child.id for child in found]
        ordered: list[tuple[Run, int]] = []

        def walk(node: Run, depth: int) -> None:
            ordered.append((node, depth))
            for child in children.get(node.id, []):
                walk(child, depth + 1)

        walk(root, 0)
        return ordered

    def _runs(self, ids: list[str], *, by: Literal["id", "parent_run_id"]) -> list[Run]:
        column = t.runs.c[by]
        found: list[Run] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = (
                    select(t.runs)
                    .where(column.in_(ids[start : start + 500]))
                    .order_by(t.run_time(), t.runs.c.id)
                )
                found += [Run.model_validate(dict(r)) for r in conn.execute(query).mappings()]
        return found


def _utc(value: Any) -> datetime | None:
    """A grouped time back as an aware UTC datetime, the same from both databases."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
