"""How much reviewers agree: Cohen's kappa for two raters, Krippendorff's alpha for any number.

Both compare the agreement observed with the agreement expected by chance, so
1 is perfect agreement, 0 is no better than chance and negative values are
systematic disagreement. Both return ``None`` when the number is undefined (no
pairable data, or no variation at all: every rating the same value, where
chance agreement is already perfect).

Krippendorff's alpha follows "Computing Krippendorff's Alpha-Reliability"
(Krippendorff, 2011): values are pooled into a coincidence matrix, units rated
by fewer than two reviewers are dropped, and the distance between two values is
0/1 for nominal data, the squared difference for interval data, and for ordinal
data the squared count of values ranked between them (half of each end's own
count included), so only the order of the values matters, not their spacing.

Which level a key is measured at is :func:`agreement_level`: faces and stars
are ordered ranks (ordinal), thumbs and labels are categories (nominal), other
numeric keys are interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations
from typing import Any, Literal

from tuneback.domain.feedback import CategoricalConfig, ContinuousConfig, FreeformConfig

AgreementLevel = Literal["nominal", "ordinal", "interval"]

ORDINAL_KEYS = frozenset({"faces", "stars"})
"""Rating scales whose values are ranks: a 4 is closer to a 5 than to a 1, by rank alone."""


def agreement_level(
    key: str, config: ContinuousConfig | CategoricalConfig | FreeformConfig | None
) -> AgreementLevel:
    """The level a key's agreement is measured at.

    Faces and stars are ordinal; so is a labelled key of three or more labels that
    all carry scores (the scores rank them). Two labels (thumbs) are nominal,
    as is any unscored label set; other numeric keys are interval.
    """
    if key in ORDINAL_KEYS:
        return "ordinal"
    if isinstance(config, CategoricalConfig):
        scored = all(c.score is not None for c in config.categories)
        return "ordinal" if scored and len(config.categories) > 2 else "nominal"
    return "interval"


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


def _distance(a: Hashable, b: Hashable, level: AgreementLevel, totals: Counter[Any]) -> float:
    if level == "nominal":
        return 0.0 if a == b else 1.0
    if level == "ordinal":
        low, high = sorted((a, b))  # type: ignore[type-var]
        between = sum(n for value, n in totals.items() if low <= value <= high)
        return (between - (totals[low] + totals[high]) / 2) ** 2
    return (float(a) - float(b)) ** 2  # type: ignore[arg-type]


def krippendorff_alpha(
    units: Iterable[Sequence[Hashable]], level: AgreementLevel = "nominal"
) -> float | None:
    """Krippendorff's alpha; each unit lists the values its reviewers gave (any number, any order).

    Ordinal and interval data must be numbers (for ordinal, any numbers that sort
    in rank order, such as scores).
    """
    pairable = [list(values) for values in units if len(values) >= 2]
    n = sum(len(values) for values in pairable)
    if n < 2:
        return None
    totals = Counter(value for values in pairable for value in values)
    # Observed disagreement: within each unit, every ordered pair of values,
    # weighted 1 / (m_u - 1) so each unit contributes its m_u values once.
    observed = 0.0
    for values in pairable:
        within = sum(_distance(a, b, level, totals) for a, b in combinations(values, 2))
        observed += 2 * within / (len(values) - 1)
    observed /= n
    # Expected disagreement: every ordered pair of values across all units.
    expected = sum(
        2 * totals[a] * totals[b] * _distance(a, b, level, totals)
        for a, b in combinations(totals, 2)
    ) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected
