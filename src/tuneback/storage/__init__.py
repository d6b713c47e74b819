"""Storage: the only package that speaks SQL. Everything goes through :class:`Store`."""

from tuneback.storage.engine import default_sqlite_url, parse_database_url
from tuneback.storage.store import NewEvent, Store

__all__ = ["NewEvent", "Store", "default_sqlite_url", "parse_database_url"]
