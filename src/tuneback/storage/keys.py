"""API keys and server secrets: the rows that say who may use the API.

Kept apart from :class:`~tuneback.storage.Store`'s event log on purpose: a key
hash or a signing secret must not be replayable by whoever reads events. The
:class:`AccessStore` shares the store's engine, so it works on the same
database, SQLite or PostgreSQL, with the same migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tuneback.domain import utcnow
from tuneback.domain.access import AccountRole
from tuneback.errors import NotFoundError
from tuneback.storage import tables as t
from tuneback.storage.rows import record_from_row
from tuneback.storage.store import Store


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored key: never the key itself, only its hash and its first characters."""

    id: str
    project: str
    name: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    role: AccountRole = "owner"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AccessStore:
    """Reads and writes of ``api_keys`` and ``server_secrets`` on a store's database."""

    def __init__(self, store: Store) -> None:
        self.database = store.database
        self.engine = store.engine

    def add_key(
        self,
        *,
        key_id: str,
        project: str,
        name: str | None,
        key_hash: str,
        prefix: str,
        role: AccountRole = "owner",
    ) -> ApiKeyRecord:
        record = ApiKeyRecord(
            id=key_id, project=project, name=name, prefix=prefix, created_at=utcnow(), role=role
        )
        with self.database.writing() as conn:
            conn.execute(
                t.api_keys.insert().values(
                    id=record.id,
                    project=record.project,
                    name=record.name,
                    key_hash=key_hash,
                    prefix=record.prefix,
                    created_at=record.created_at,
                    role=record.role,
                )
            )
        return record

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.api_keys).where(t.api_keys.c.key_hash == key_hash)).first()
        return record_from_row(ApiKeyRecord, row) if row is not None else None

    def get_key(self, key_id: str) -> ApiKeyRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFoundError(f"no API key with id {key_id}")
        return record_from_row(ApiKeyRecord, row)

    def list_keys(self, project: str | None = None) -> list[ApiKeyRecord]:
        query = select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.id)
        if project is not None:
            query = query.where(t.api_keys.c.project == project)
        with self.engine.connect() as conn:
            return [record_from_row(ApiKeyRecord, row) for row in conn.execute(query)]

    def revoke_key(self, key_id: str) -> ApiKeyRecord:
        with self.database.writing() as conn:
            conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get_key(key_id)

    def secret(self, name: str, make: str) -> str:
        """The secret called ``name``; ``make`` is stored if there is none yet.

        Two processes starting at once both try to insert; the loser's insert
        fails on the primary key and it reads the winner's, so every process
        signs with the same secret.
        """
        query = select(t.server_secrets.c.value).where(t.server_secrets.c.name == name)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        if found is not None:
            return str(found)
        try:
            with self.database.writing() as conn:
                conn.execute(
                    t.server_secrets.insert().values(name=name, value=make, created_at=utcnow())
                )
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            return str(conn.execute(query).scalar_one())
