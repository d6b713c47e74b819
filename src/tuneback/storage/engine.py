"""Connections to SQLite (the embedded default) or PostgreSQL, and what differs between them.

Three things live here and nowhere else:

- the engine for a URL, with the settings each database needs (:func:`make_engine`);
- :class:`Dialect`, the few operations the two databases do differently (an
  upsert, the locks concurrent writers take, JSON paths, making deleted bytes
  unreadable); every other storage module asks it instead of testing the
  database's name;
- :class:`Database`, how reads and writes take connections and how a database
  that cannot be reached is reported.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    InterfaceError,
    InvalidatePoolError,
    NoSuchModuleError,
    OperationalError,
)

from tuneback.domain.json_encoding import json_loads, json_text
from tuneback.errors import ConfigurationError, StorageError, TuneBackError, ValidationError
from tuneback.storage.sqlite_functions import register_sqlite_functions

try:  # POSIX only; elsewhere SQLite serves one process and a named lock is always granted.
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms tuneback is tested on
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

WRITE_OPTION = "tuneback_write"
"""Execution option marking a connection that will write (SQLite: BEGIN IMMEDIATE)."""


class WriterBusy(Exception):
    """SQLite's write lock is held by another connection, and this one does not wait for it.

    Raised by the engine that commits in the event loop's thread, so the loop
    never sleeps on a lock: what it was about to write goes to the writer thread.
    """


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
    return json_text(value)


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
        engine = create_engine(
            parsed,
            echo=echo,
            pool_size=10,
            # The most recently returned connection is handed out first: under
            # load a few stay busy (and skip the ping below), the rest sit idle.
            pool_use_lifo=True,
            pool_recycle=3600,
            json_serializer=_serialize_json,
            json_deserializer=json_loads,
        )
        _ping_when_idle(engine)
        return engine
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            f"the driver for {parsed.drivername} is not installed ({exc}): "
            "pip install 'tuneback[postgres]'"
        ) from None


IDLE_BEFORE_PING = 0.25
"""Seconds a pooled PostgreSQL connection may sit unused before it is pinged on checkout."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle a while.

    A connection the server dropped while it sat in the pool (a restart) is
    found out and replaced before use, so the first request after it succeeds.
    One returned a moment ago cannot have missed a restart, so under load no
    request pays a round trip for the ping (SQLAlchemy's ``pool_pre_ping`` pings on
    every checkout: one more round trip per write group, and per read). A
    connection that breaks while in use is a 503 either way, and SQLAlchemy then
    replaces every connection of the pool.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_BEFORE_PING:
            return  # just opened, or just used
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool replaces this connection, and every other one it
                # held from before (a restart dropped them all), then goes on.
                raise InvalidatePoolError(str(exc)) from exc
            raise


def _sqlite_file(url: URL) -> str | None:
    """The file a SQLite URL names; None for an in-memory database, which has none."""
    database = url.database
    return database if database and database != ":memory:" else None


def _sqlite_engine(url: URL, *, echo: bool, wait: bool = True) -> Engine:
    """A SQLite engine; with ``wait=False``, one connection that never waits for the write lock."""
    file = _sqlite_file(url)
    if file is not None:
        Path(file).expanduser().parent.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {} if wait else {"pool_size": 1, "max_overflow": 0}
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        **pool,
        json_serializer=_serialize_json,
        json_deserializer=json_loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start instead
        # of the sqlite3 module's implicit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        if not wait:
            # Only from here on: opening the connection may still wait, once.
            cursor.execute("PRAGMA busy_timeout=0")
            # Its commits leave checkpoints (a flush to disk) to the writer thread.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that
        # upgrades from read to write can fail with SQLITE_BUSY at once,
        # ignoring busy_timeout.
        if conn.get_execution_options().get(WRITE_OPTION):
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except OperationalError as exc:
                code = getattr(exc.orig, "sqlite_errorcode", None)
                if wait or code != sqlite3.SQLITE_BUSY:
                    raise
                raise WriterBusy(str(exc.orig)) from exc
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


# -- what differs between the databases ---------------------------------------------

# PostgreSQL's advisory locks are named by a key hashed with the schema's name,
# so two schemas of one database never share a lock.
_XACT_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || :key, 0))")
# A writer's locks, in one statement: first its share of the projections
# (``hold_projections`` takes them whole), then the narrow ones, in sorted order.
_WRITER_LOCKS = text(
    "SELECT CASE WHEN shared"
    " THEN pg_advisory_xact_lock_shared(hashtextextended(current_schema() || k, 0))"
    " ELSE pg_advisory_xact_lock(hashtextextended(current_schema() || k, 0)) END "
    "FROM (SELECT true AS shared, '/projections' AS k"
    " UNION ALL SELECT false, '/' || k FROM unnest(CAST(:keys AS text[])) AS k"
    " ORDER BY shared DESC, k) AS slots"
)
_TAIL_HELD = "tuneback.log_tail_held_by"
_TRY_SESSION_LOCK = text(
    "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || :key, 0))"
)
_SESSION_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(current_schema() || :key, 0))")


class NamedLock:
    """A lock held by this process until :meth:`release`, or until the process dies.

    On PostgreSQL it is a session advisory lock on a connection of its own,
    released when that connection drops; on SQLite an exclusive ``flock`` on a
    file beside the database, which the kernel releases the same way.
    """

    def __init__(self, key: str, conn: Connection | None, lock_file: IO[bytes] | None) -> None:
        self.key = key
        self._conn = conn
        self._file = lock_file
        self._released = False

    def holds(self) -> bool:
        """False once the lock is lost (PostgreSQL's connection to it dropped)."""
        if self._released:
            return False
        if self._conn is None:
            return True
        try:
            self._conn.execute(text("SELECT 1"))
        except Exception:
            self.release()
            return False
        return True

    def release(self) -> None:
        self._released = True
        conn, self._conn = self._conn, None
        if conn is not None:
            # A lost connection has released the lock already.
            with suppress(Exception):
                conn.execute(_SESSION_UNLOCK, {"key": self.key})
            with suppress(Exception):
                conn.close()
        lock_file, self._file = self._file, None
        if lock_file is not None:
            lock_file.close()


class Dialect:
    """The operations SQLite and PostgreSQL do differently; the rest of storage asks this.

    SQLite has one writer at a time (a writer takes the file's lock with
    ``BEGIN IMMEDIATE``), so the locks PostgreSQL's concurrent writers take are
    no-ops there.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.postgres = name == "postgresql"

    @staticmethod
    def of(bind: Engine | Connection) -> Dialect:
        return _DIALECTS[bind.dialect.name]

    # -- writing ----------------------------------------------------------------

    def insert(self, table: Table) -> Any:
        """``INSERT`` that can end in ``ON CONFLICT DO NOTHING`` or ``DO UPDATE`` (an upsert)."""
        return postgresql.insert(table) if self.postgres else sqlite.insert(table)

    @property
    def writers_overlap(self) -> bool:
        """Whether another writer's rows can be in flight while this one writes.

        A PostgreSQL writer applies its projections before it queues for the
        log's tail; an SQLite writer holds the whole file from its first statement.
        """
        return self.postgres

    def hold_log_tail(self, conn: Connection) -> None:
        """Hold the log's tail until ``conn``'s transaction ends (SQLite's write lock does).

        Asking again in the same transaction costs nothing: the lock is held already.
        """
        if not self.postgres:
            return
        transaction = conn.get_transaction()
        if transaction is not None and conn.info.get(_TAIL_HELD) is transaction:
            return
        conn.execute(_XACT_LOCK, {"key": "/log"})
        # The connection's info outlives the transaction; the transaction object
        # does not come back, so a later one never matches it. A lock taken in
        # a savepoint goes if the savepoint is rolled back: that one is not noted.
        if not conn.in_nested_transaction():
            conn.info[_TAIL_HELD] = transaction

    def hold_projections(self, conn: Connection) -> None:
        """Keep every writer out of the projections and the log until the transaction ends
        (each writer holds a share of them before it changes anything: :meth:`lock_slots`).

        For work that rewrites rows other writers may be changing (a rebuild, a
        person forgotten): on PostgreSQL a writer changes projections before it
        queues for the log's tail, so holding the tail alone would let its changes
        land on rows this transaction deletes. SQLite's write lock does both.
        """
        if self.postgres:
            conn.execute(_XACT_LOCK, {"key": "/projections"})
            self.hold_log_tail(conn)

    def lock_slots(self, conn: Connection, keys: Iterable[str]) -> None:
        """Take a writer's locks until the transaction ends: the narrow ones named by
        ``keys``, after a share of the projections that :meth:`hold_projections` waits for.

        Taken in that order, and the narrow ones sorted, so two writers cannot deadlock.
        """
        if self.postgres:
            conn.execute(_WRITER_LOCKS, {"keys": sorted(set(keys))})

    def lock_whole_log(self, conn: Connection) -> None:
        """Keep every other writer out of the log until the transaction ends."""
        if self.postgres:
            conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))

    def lock_migrations(self, conn: Connection) -> None:
        """Two servers starting at once must not both create the tables."""
        if self.postgres:
            conn.execute(_XACT_LOCK, {"key": "/migrate"})

    def take_named_lock(self, engine: Engine, key: str) -> NamedLock | None:
        """The lock called ``key`` if no other process holds it, else None."""
        if self.postgres:
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                taken = bool(conn.execute(_TRY_SESSION_LOCK, {"key": key}).scalar())
            except Exception:
                conn.close()
                raise
            if not taken:
                conn.close()
                return None
            return NamedLock(key, conn, None)
        database = _sqlite_file(engine.url)
        if fcntl is None or database is None:
            return NamedLock(key, None, None)
        path = Path(f"{database}.{key.strip('/').replace('/', '-')}.lock")
        lock_file = path.open("ab")
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.close()
            return None
        os.set_inheritable(lock_file.fileno(), False)
        return NamedLock(key, None, lock_file)

    # -- reading ----------------------------------------------------------------

    def one_of(
        self, column: ColumnElement[Any], values: str | Iterable[Any]
    ) -> ColumnElement[bool]:
        """``column IN values``; ``values`` is a list, or the name of a parameter given later.

        On PostgreSQL it is ``column = ANY(array)``: the statement's text stays the
        same however many values there are, so the driver prepares it once and the
        server plans it once, where an ``IN`` list is new text, parsed and planned
        again, for every count (planning took three times as long as running the
        write path's lookups by run id).
        """
        if self.postgres:
            array = ARRAY(column.type)
            if isinstance(values, str):
                return column == any_(bindparam(values, type_=array))
            return column == any_(bindparam(None, list(values), type_=array))
        if isinstance(values, str):
            return column.in_(bindparam(values, expanding=True))
        return column.in_(list(values))

    def json_text(self, column: ColumnElement[Any], *path: str) -> ColumnElement[Any]:
        """The text at ``path`` inside a JSON column (``json_text(payload, "task", "id")``)."""
        if self.postgres:
            document: Any = column.cast(JSONB)
            for step in path[:-1]:
                document = document[step]
            found: ColumnElement[Any] = document[path[-1]].astext
            return found
        return func.json_extract(column, "$." + ".".join(path))

    # -- erasing ----------------------------------------------------------------

    @contextmanager
    def erasing(self, conn: Connection) -> Iterator[None]:
        """Deleted and overwritten content is zeroed while this lasts (SQLite's free pages)."""
        if not self.postgres:
            # Run on the driver's connection: outside any transaction.
            conn.connection.driver_connection.execute("PRAGMA secure_delete=ON")  # type: ignore[union-attr]
        try:
            yield
        finally:
            if not self.postgres:
                conn.connection.driver_connection.execute("PRAGMA secure_delete=OFF")  # type: ignore[union-attr]

    def reclaim(self, conn: Connection, tables: Iterable[Table]) -> None:
        """Drop the old versions of rows changed in ``tables`` from the files on disk."""
        if not self.postgres:
            # Old page versions move out of the write-ahead log into the file.
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            return
        # Dead row versions keep the old text on disk until a vacuum reclaims them;
        # VACUUM cannot run inside a transaction, hence autocommit.
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            auto.execute(text(f'VACUUM "{table.name}"'))


_DIALECTS = {name: Dialect(name) for name in ("sqlite", "postgresql")}
DIALECTS = tuple(_DIALECTS.values())
"""Both databases' dialects: for statements built once for each."""


# -- taking connections --------------------------------------------------------------


class Database:
    """One database: its engine, its dialect, and how reads and writes take connections."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = parse_database_url(url)
        self.engine: Engine = make_engine(url, echo=echo)
        self.dialect = Dialect.of(self.engine)
        self.inline_engine: Engine | None = None
        """SQLite only: the connection an event loop commits its own writes on (see
        :class:`~tuneback.storage.writer.GroupWriter`); it raises :class:`WriterBusy`
        rather than wait for the write lock."""
        if not self.dialect.postgres and _sqlite_file(self.url) is not None:
            self.inline_engine = _sqlite_engine(self.url, echo=echo, wait=False)

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def seen_by_other_processes(self) -> bool:
        """Whether another process opening :attr:`url` sees this data (not SQLite in memory)."""
        return self.dialect.postgres or _sqlite_file(self.url) is not None

    def dispose(self) -> None:
        self.engine.dispose()
        if self.inline_engine is not None:
            self.inline_engine.dispose()

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log's pages into the database file.

        Passive: it waits for no reader or writer, and copies what it can.
        """
        with self.engine.connect() as conn:
            # On the driver's own connection: a checkpoint cannot run inside the
            # transaction SQLAlchemy would begin.
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads; a database that cannot answer is a :class:`StorageError`."""
        try:
            if self.dialect.postgres:
                # Reads need no transaction of their own: skipping BEGIN/COMMIT
                # saves two round trips per read.
                with self.engine.connect() as conn:
                    yield conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise describe_database_error(exc, self.display_url) from None

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction that will write, committed when the block ends without error.

        For rows outside the event log (keys, accounts, review leases); events go
        through the store's writer.
        """
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def guard(self, action: Callable[[], T], doing: str) -> T:
        """Run ``action``; a database that cannot be reached says so, naming the setting."""
        try:
            return action()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StorageError(
                f"cannot {doing} database {self.display_url}: {reason} "
                "(check TUNEBACK_DATABASE_URL and that the server is running)"
            ) from None
