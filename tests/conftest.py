"""Shared fixtures: a ``dialect`` parameter that runs storage tests on SQLite and PostgreSQL.

PostgreSQL tests use a database made for this test session on
``TUNEBACK_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
with a fresh schema per test; the database is dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tuneback.storage import Store

ADMIN_URL = os.environ.get("TUNEBACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database for this test session; yields its URL without a schema."""
    name = f"tuneback_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed for the storage tests ({ADMIN_URL}): {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_schema_url(database_url: str) -> str:
    schema = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    dialect: str = request.param
    return dialect


@pytest.fixture
def database_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the test's dialect."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'tuneback.db'}"
    database: str = request.getfixturevalue("postgres_database")
    return _postgres_schema_url(database)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as store:
        yield store


@pytest.fixture
def store_url_only(database_url: str) -> str:
    """A migrated, empty database of the test's dialect, for tests that open stores themselves."""
    Store(database_url).close()
    return database_url
