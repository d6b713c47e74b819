"""Fresh stores to benchmark: a SQLite file, then a PostgreSQL schema, each removed after."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tuneback.storage import Store

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def stores(postgres: str = POSTGRES, only: str | None = None) -> Iterator[tuple[str, Store]]:
    """(dialect, store) for each database in turn (``only`` picks one)."""
    if only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp, Store(f"sqlite:///{Path(tmp) / 'b.db'}") as s:
            yield "sqlite", s
    if only in (None, "postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        try:
            with Store(f"{postgres}?options=-csearch_path%3D{schema}") as s:
                yield "postgresql", s
        finally:
            with psycopg.connect(postgres, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
