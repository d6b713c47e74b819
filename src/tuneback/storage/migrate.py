"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"

# Hashed with the schema's name, so servers migrating different schemas of one
# database do not wait for each other.
_MIGRATION_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/migrate', 0))"
)


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _locked(engine: Engine) -> Connection:
    conn = engine.connect().execution_options(tuneback_write=True)
    conn.begin()
    if conn.dialect.name == "postgresql":
        # Two servers starting at once must not both create the tables.
        conn.execute(_MIGRATION_LOCK)
    return conn


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _locked(engine) as conn:
        command.upgrade(_config(conn), revision)
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    with _locked(engine) as conn:
        command.downgrade(_config(conn), revision)
        conn.commit()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
