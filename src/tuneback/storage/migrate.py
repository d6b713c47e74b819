"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from tuneback.storage.engine import WRITE_OPTION, Dialect

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _locked(engine: Engine) -> Connection:
    conn = engine.connect().execution_options(**{WRITE_OPTION: True})
    conn.begin()
    Dialect.of(conn).lock_migrations(conn)
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
