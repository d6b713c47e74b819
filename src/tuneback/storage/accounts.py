"""Accounts and sign-in sessions: the rows that say who may use the pages.

Like API keys they stay out of the event log (a password hash or a session
token must never be replayable); creating an account is audited as an event
by the service instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from tuneback.domain import utcnow
from tuneback.domain.access import Account, AccountRole, join_projects, parse_projects
from tuneback.errors import ConflictError, NotFoundError
from tuneback.storage import tables as t
from tuneback.storage.keys import AccessStore


class AccountStore(AccessStore):
    """Reads and writes of ``accounts`` and ``sessions`` on a store's database."""

    def add_account(
        self, *, name: str, role: AccountRole, projects: tuple[str, ...], password_hash: str
    ) -> Account:
        account = Account(name=name, role=role, projects=projects, created_at=utcnow())
        try:
            with self.database.writing() as conn:
                conn.execute(
                    t.accounts.insert().values(
                        name=name,
                        role=role,
                        projects=join_projects(projects),
                        password_hash=password_hash,
                        created_at=account.created_at,
                    )
                )
        except IntegrityError as exc:
            raise ConflictError(f"there is already an account called {name!r}") from exc
        return account

    def account(self, name: str) -> tuple[Account, str]:
        """The account and its password hash."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.accounts).where(t.accounts.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no account called {name!r}")
        return _account(row), str(row.password_hash)

    def list_accounts(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.accounts).order_by(t.accounts.c.name))
            return [_account(row) for row in rows]

    def count_active_accounts(self) -> int:
        query = select(func.count()).where(t.accounts.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query.select_from(t.accounts)).scalar_one())

    def update_account(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        role: AccountRole | None = None,
        disabled: bool | None = None,
    ) -> Account:
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled_at"] = utcnow() if disabled else None
        with self.database.writing() as conn:
            done = conn.execute(update(t.accounts).where(t.accounts.c.name == name).values(values))
            if done.rowcount == 0:
                raise NotFoundError(f"no account called {name!r}")
            if password_hash is not None or disabled:
                # A new password or a disabled account signs out every browser.
                conn.execute(delete(t.sessions).where(t.sessions.c.account == name))
        return self.account(name)[0]

    # -- sessions ----------------------------------------------------------------

    def add_session(self, *, token_hash: str, account: str, expires_at: datetime) -> None:
        with self.database.writing() as conn:
            conn.execute(
                t.sessions.insert().values(
                    token_hash=token_hash,
                    account=account,
                    created_at=utcnow(),
                    expires_at=expires_at,
                )
            )

    def session(self, token_hash: str) -> tuple[Account, datetime] | None:
        """The signed-in account and when its session expires; None if unknown."""
        query = (
            select(t.accounts, t.sessions.c.expires_at)
            .join(t.sessions, t.sessions.c.account == t.accounts.c.name)
            .where(t.sessions.c.token_hash == token_hash)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _account(row), row.expires_at

    def end_session(self, token_hash: str) -> None:
        with self.database.writing() as conn:
            conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == token_hash))

    def end_expired_sessions(self) -> int:
        with self.database.writing() as conn:
            done = conn.execute(delete(t.sessions).where(t.sessions.c.expires_at < utcnow()))
        return int(done.rowcount)


def _account(row: Any) -> Account:
    return Account(
        name=row.name,
        role=row.role,
        projects=parse_projects(row.projects),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )
