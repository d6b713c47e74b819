"""End users: the people who chat and rate, named by the ``user`` on their data.

Forgetting one removes their conversations, messages, runs, feedback and
comparisons, and what was copied from them, from every table and from the
log's readable history (their events become content-free tombstones); see
:mod:`tuneback.storage.forget` for exactly what counts as theirs. The forget
itself is audited: an ``audit.recorded`` event with the action
``user.forgotten``, the name as target and the counts, never what they wrote.
"""

from __future__ import annotations

from tuneback.errors import ValidationError
from tuneback.services.audit import AuditService
from tuneback.storage import Store
from tuneback.storage.forget import ForgetCounts

FORGOTTEN = "user.forgotten"


class UserService:
    """What can be done to an end user's data as a whole."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.audit = AuditService(store)

    def forget(
        self, name: str, *, project: str | None = None, actor: str | None = None
    ) -> ForgetCounts:
        """Forget ``name`` (in ``project`` only, when given) and audit it; returns the counts.

        ``actor`` (who asked: an account, an API key id, ``cli``) goes into the audit.

        Raises :class:`~tuneback.errors.NotFoundError` when they have no data.
        """
        if not name.strip():
            raise ValidationError("name the user to forget (it must not be empty)")
        counts = self.store.forget_user(name, project=project)
        self.audit.record(
            action=FORGOTTEN,
            actor=actor,
            project=project,
            target=name,
            details=counts.as_dict(),
        )
        return counts
