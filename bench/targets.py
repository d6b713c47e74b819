"""Stores to benchmark: a SQLite file, then a PostgreSQL schema, fresh and removed after,
or kept under a name so that a big seeded store is loaded once and measured many times."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

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


def kept_stores(
    name: str, postgres: str = POSTGRES, only: str | None = None
) -> Iterator[tuple[str, Store]]:
    """(dialect, store) kept under ``name`` between runs: a SQLite file in the temporary
    directory and a PostgreSQL schema, made when missing and never removed here."""
    if only in (None, "sqlite"):
        with Store(f"sqlite:///{Path(tempfile.gettempdir()) / f'{name}.db'}") as s:
            yield "sqlite", s
    if only in (None, "postgresql"):
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
        with Store(f"{postgres}?options=-csearch_path%3D{name}") as s:
            yield "postgresql", s


def drop_kept(name: str, postgres: str = POSTGRES, only: str | None = None) -> None:
    """Remove the stores :func:`kept_stores` keeps under ``name``."""
    if only in (None, "sqlite"):
        (Path(tempfile.gettempdir()) / f"{name}.db").unlink(missing_ok=True)
    if only in (None, "postgresql"):
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
