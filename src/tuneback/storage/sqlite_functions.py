"""Functions tuneback adds to every SQLite connection (PostgreSQL has its own)."""

from __future__ import annotations

import math
from typing import Any


class _Percentile:
    """``tb_percentile(value, fraction)``: a linear-interpolated percentile for SQLite."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: float | None, fraction: float) -> None:
        if value is not None:
            self.values.append(value)
        self.fraction = fraction

    def finalize(self) -> float | None:
        return percentile(self.values, self.fraction)


def percentile(values: list[float], fraction: float) -> float | None:
    """Like PostgreSQL's ``percentile_cont``: interpolate between the nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def register_sqlite_functions(dbapi_connection: Any) -> None:
    dbapi_connection.create_aggregate("tb_percentile", 2, _Percentile)
