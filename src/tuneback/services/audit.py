"""The audit trail: who made or revoked a key, exported data, logged in or forgot a user.

Each is an ``audit.recorded`` event in the one log, so it is kept, replicated
and read like every other change (``tuneback events --type audit.recorded``).
An audit names the actor and the target, never a secret or what a user wrote:
callers pass ids, names and counts in ``details``, not keys, passwords or text.
"""

from __future__ import annotations

from typing import Any

from tuneback.domain import AuditRecorded, StoredEvent, validate
from tuneback.storage import Store

CLI_ACTOR = "cli"
"""The actor of what a ``tuneback`` command does on the database directly."""


class AuditService:
    """Appends audit events; a refused audit raises the one ValidationError like any payload."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        *,
        action: str,
        actor: str | None = None,
        project: str | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredEvent:
        """Log ``action``; ``project`` None for what belongs to no single project (a login)."""
        return self.store.append(_payload(action, actor, project, target, details))

    async def record_async(
        self,
        *,
        action: str,
        actor: str | None = None,
        project: str | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> StoredEvent:
        """:meth:`record` for a coroutine: waits for the commit without holding a thread."""
        return await self.store.append_async(_payload(action, actor, project, target, details))


def _payload(
    action: str,
    actor: str | None,
    project: str | None,
    target: str | None,
    details: dict[str, Any] | None,
) -> AuditRecorded:
    data = {
        "action": action,
        "actor": actor,
        "project": project,
        "target": target,
        "details": details or {},
    }
    return validate(AuditRecorded, data, what="audit.recorded payload")
