"""Read every projection table whole, to compare a store before and after a rebuild."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tuneback.storage import Store
from tuneback.storage import tables as t


def projection_snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    snapshot = {}
    with store.engine.connect() as conn:
        # Rollups count the other tables' rows; tests/storage/test_rollups.py checks them.
        for table in (table for table in t.PROJECTIONS if table not in t.ROLLUPS):
            order = list(table.primary_key.columns)
            result = conn.execute(select(table).order_by(*order))
            names = list(result.keys())
            snapshot[table.name] = [dict(zip(names, row, strict=True)) for row in result]
    return snapshot
