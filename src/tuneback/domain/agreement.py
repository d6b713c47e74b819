"""How much reviewers agree: Cohen's kappa for two raters, Krippendorff's alpha for any number.

Both compare the agreement observed with the agreement expected by chance, so
1 is perfect agreement, 0 is no better than chance and negative values are
systematic disagreement. Both return ``None`` when the number is undefined (no
pairable data, or no variation at all: every rating the same value, where
chance agreement is already perfect).

Krippendorff's alpha follows "Computing Krippendorff's Alpha-Reliability"
(Krippendorff, 2011): values are pooled into a coincidence matrix, units rated
by fewer than two reviewers are dropped, and the distance between two values is
0/1 for nominal data and the squared difference for interval data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations
from typing import Literal

AgreementLevel = Literal["nominal", "interval"]


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa for two raters; each pair is (rater A's label, rater B's label) on one item."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def _distance(a: Hashable, b: Hashable, level: AgreementLevel) -> float:
    if level == "nominal":
        return 0.0 if a == b else 1.0
    return (float(a) - float(b)) ** 2  # type: ignore[arg-type]


def krippendorff_alpha(
    units: Iterable[Sequence[Hashable]], level: AgreementLevel = "nominal"
) -> float | None:
    """Krippendorff's alpha; each unit lists the values its reviewers gave (any number, any order).

    Interval data must be numbers.
    """
    pairable = [list(values) for values in units if len(values) >= 2]
    n = sum(len(values) for values in pairable)
    if n < 2:
        return None
    # Observed disagreement: within each unit, every ordered pair of values,
    # weighted 1 / (m_u - 1) so each unit contributes its m_u values once.
    observed = 0.0
    for values in pairable:
        within = sum(_distance(a, b, level) for a, b in combinations(values, 2))
        observed += 2 * within / (len(values) - 1)
    observed /= n
    # Expected disagreement: every ordered pair of values across all units.
    totals = Counter(value for values in pairable for value in values)
    expected = sum(
        2 * totals[a] * totals[b] * _distance(a, b, level) for a, b in combinations(totals, 2)
    ) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected
