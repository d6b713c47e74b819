"""Engines for SQLite (the embedded default) and PostgreSQL, with the settings each needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from tuneback.errors import ConfigurationError, StorageError, TuneBackError, ValidationError
from tuneback.storage.sqlite_functions import register_sqlite_functions

WRITE_OPTION = "tuneback_write"
"""Execution option marking a connection that will write (SQLite: BEGIN IMMEDIATE)."""

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # NORMAL in WAL mode survives any crash of the process; only a power cut can
    # lose the last transactions, and never corrupts the file.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-32000",
    "PRAGMA temp_store=MEMORY",
)


class EncodedJson(str):
    """JSON text that is already encoded: written to a JSON column as it is.

    Event payloads are encoded by pydantic's serializer in one call; this saves
    dumping them to Python data and encoding that again.
    """


def _serialize_json(value: Any) -> str:
    if isinstance(value, EncodedJson):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_database_url(url: str) -> URL:
    """Parse and normalise a database URL, refusing ones tuneback cannot use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"cannot parse database URL {url!r}: use sqlite:///path/to/file.db "
            "or postgresql://user@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise ConfigurationError(
        f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
        "tuneback stores data in SQLite or PostgreSQL"
    )


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = parse_database_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, echo=echo)
        return create_engine(
            parsed,
            echo=echo,
            pool_size=10,
            # A connection the server dropped (a restart while idle) is found out
            # before use and replaced, so the first request after it succeeds.
            pool_pre_ping=True,
            pool_recycle=3600,
            json_serializer=_serialize_json,
        )
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            f"the driver for {parsed.drivername} is not installed ({exc}): "
            "pip install 'tuneback[postgres]'"
        ) from None


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        json_serializer=_serialize_json,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start instead
        # of the sqlite3 module's implicit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that
        # upgrades from read to write can fail with SQLITE_BUSY at once,
        # ignoring busy_timeout.
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def default_sqlite_url() -> str:
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('tuneback')) / 'tuneback.db'}"


DatabaseError = DBAPIError
"""What the database driver raises, wrapped by SQLAlchemy; see :func:`describe_database_error`."""


def database_unavailable(exc: DBAPIError) -> bool:
    """Whether the error means the database could not be reached (rather than refused data)."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


def describe_database_error(exc: DBAPIError, display_url: str) -> TuneBackError:
    """The tuneback error a driver error stands for: 503 when unreachable, 422 for bad data."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    if database_unavailable(exc):
        return StorageError(
            f"the database {display_url} is not answering ({reason}); "
            "try again shortly (check that the database server is running)"
        )
    if isinstance(exc, DataError):
        return ValidationError(f"the database refused a value: {reason}")
    return StorageError(f"the database {display_url} refused the operation: {reason}")
