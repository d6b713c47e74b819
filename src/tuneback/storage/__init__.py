"""Storage: the only package that speaks SQL. Everything goes through :class:`Store`."""

from tuneback.storage.engine import (
    DatabaseError,
    default_sqlite_url,
    describe_database_error,
    parse_database_url,
)
from tuneback.storage.store import NewEvent, Store

__all__ = [
    "DatabaseError",
    "NewEvent",
    "Store",
    "default_sqlite_url",
    "describe_database_error",
    "parse_database_url",
]
