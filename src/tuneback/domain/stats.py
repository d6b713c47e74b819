"""Pure statistics the dashboard shares: intervals, prompt versions and latency histograms.

Latency histograms use log-spaced buckets that grow by :data:`GROWTH`; a value is
read back as the point of its bucket that is nearest, relatively, to both ends,
so any value and any percentile read from a histogram is within
:data:`RELATIVE_ERROR` (under 2%) of the exact one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

GROWTH = 1.04
RELATIVE_ERROR = (GROWTH - 1) / (GROWTH + 1)
"""The largest relative error of a value read back from its bucket (1.96%)."""

ZERO_BUCKET = "z"
"""Zero and negative values: read back as 0."""

_LOG_GROWTH = math.log(GROWTH)


def prompt_version(system_prompt: str | None) -> str:
    """A short stable name for a system prompt, so versions can be told apart."""
    if not system_prompt:
        return "(none)"
    return "sp-" + hashlib.sha256(system_prompt.encode()).hexdigest()[:8]


def mean_ci(mean: float | None, mean_square: float | None, n: int) -> list[float] | None:
    """95% confidence interval of a mean (normal approximation); None under 2 values."""
    if mean is None or mean_square is None or n < 2:
        return None
    variance = max(mean_square - mean * mean, 0.0) * n / (n - 1)
    half = 1.96 * math.sqrt(variance / n)
    return [max(0.0, mean - half), min(1.0, mean + half)]


def wilson(successes: int, trials: int, z: float = 1.96) -> list[float] | None:
    """Wilson score interval of a proportion: honest even with few ratings."""
    if trials == 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def bucket_of(value: float) -> str:
    """The histogram bucket a value falls in (a JSON object key)."""
    if value <= 0:
        return ZERO_BUCKET
    return str(math.floor(math.log(value) / _LOG_GROWTH))


def bucket_value(bucket: str) -> float:
    """The value a bucket stands for: within :data:`RELATIVE_ERROR` of all it holds."""
    if bucket == ZERO_BUCKET:
        return 0.0
    low = GROWTH ** int(bucket)
    return 2 * low * GROWTH / (1 + GROWTH)


def merge_histograms(histograms: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sum of histograms, without empty buckets."""
    total: dict[str, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            total[bucket] = total.get(bucket, 0) + count
    return {bucket: count for bucket, count in total.items() if count}


def histogram_percentiles(
    histogram: Mapping[str, int], fractions: Iterable[float]
) -> list[float | None]:
    """Percentiles of the values a histogram counts, interpolated as ``percentile_cont`` is.

    Each order statistic is read back from its bucket, so each result is within
    :data:`RELATIVE_ERROR` of the exact percentile. None when it counts nothing.
    """
    cuts = list(fractions)
    ordered = sorted(
        ((bucket_value(b), n) for b, n in histogram.items() if n > 0), key=lambda item: item[0]
    )
    total = sum(n for _, n in ordered)
    if not total:
        return [None] * len(cuts)

    def nth(rank: int) -> float:
        seen = 0
        for value, n in ordered:
            seen += n
            if rank < seen:
                return value
        return ordered[-1][0]

    found: list[float | None] = []
    for fraction in cuts:
        position = fraction * (total - 1)
        below = math.floor(position)
        low, high = nth(below), nth(min(below + 1, total - 1))
        found.append(low + (high - low) * (position - below))
    return found
