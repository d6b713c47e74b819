"""Read every projection table whole, to compare a store before and after a rebuild."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, select

from tuneback.storage import Store
from tuneback.storage import tables as t


def table_rows(store: Store, tables: Iterable[Table]) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows in primary-key order, by table name."""
    with store.engine.connect() as conn:
        return {
            table.name: [
                dict(row)
                for row in conn.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in tables
        }


def projection_snapshot(store: Store, *, rollups: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every projection table; the rollups too if asked (tests/storage/test_rollups.py
    checks them against a recount)."""
    return table_rows(
        store, (table for table in t.PROJECTIONS if rollups or table not in t.ROLLUPS)
    )
