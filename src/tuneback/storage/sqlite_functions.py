"""Functions tuneback adds to every SQLite connection (PostgreSQL has its own)."""

from __future__ import annotations

import json
import math
from typing import Any


def percentile(values: list[float], fraction: float) -> float | None:
    """Like PostgreSQL's ``percentile_cont``: interpolate between the nearest ranks."""
    if not values:
        return None
    return _interpolate(sorted(values), fraction)


def _interpolate(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _Percentiles:
    """``tb_percentiles(value, '0.5,0.99')``: several percentiles in one pass, as a JSON list.

    One aggregate instead of one per percentile: collecting the values is what
    costs, so it is done once for all of them.
    """

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fractions = "0.5"

    def step(self, value: float | None, fractions: str) -> None:
        if value is not None:
            self.values.append(value)
        self.fractions = fractions

    def finalize(self) -> str:
        ordered = sorted(self.values)
        return json.dumps([_interpolate(ordered, float(f)) for f in self.fractions.split(",")])


def register_sqlite_functions(dbapi_connection: Any) -> None:
    dbapi_connection.create_aggregate("tb_percentiles", 2, _Percentiles)
