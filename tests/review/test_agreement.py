"""Agreement statistics against textbook examples worked by hand."""

from __future__ import annotations

import pytest

from tuneback.domain.agreement import cohen_kappa, krippendorff_alpha

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": four observers,
# twelve units, missing values left out. The paper gives nominal 0.743, interval 0.849.
RELIABILITY_DATA = [
    [1, 1, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [5, 5, 5],
    [1, 1],
    [3],
]


def test_krippendorff_alpha_matches_the_papers_example() -> None:
    assert krippendorff_alpha(RELIABILITY_DATA, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(RELIABILITY_DATA, "interval") == pytest.approx(0.849, abs=5e-4)


def test_a_small_example_worked_by_hand() -> None:
    # Two raters, three items: agree, disagree, agree.
    # Nominal: n = 6, D_o = 2/6, D_e = 2·3·3/30 = 0.6, so alpha = 1 - (1/3)/0.6 = 4/9.
    units = [["up", "up"], ["up", "down"], ["down", "down"]]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(4 / 9)
    # Kappa: p_o = 2/3, p_e = 2/3·1/3 + 1/3·2/3 = 4/9, so (2/9)/(5/9) = 0.4.
    assert cohen_kappa([("up", "up"), ("up", "down"), ("down", "down")]) == pytest.approx(0.4)
    # Interval on scores: D_o = 0.5/6, D_e = 13.5/30, so alpha = 22/27.
    scores = [[1.0, 1.0], [0.75, 0.25], [0.0, 0.0]]
    assert krippendorff_alpha(scores, "interval") == pytest.approx(22 / 27)


def test_cohen_kappa_on_the_usual_two_by_two_table() -> None:
    # 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    # Perfect disagreement on a balanced table is -1.
    assert cohen_kappa([("y", "n"), ("n", "y")]) == pytest.approx(-1.0)


def test_undefined_cases_are_none() -> None:
    assert cohen_kappa([]) is None
    assert cohen_kappa([("y", "y"), ("y", "y")]) is None  # no variation: chance agrees fully
    assert krippendorff_alpha([[1], [2]]) is None  # nothing pairable
    assert krippendorff_alpha([[1, 1], [1, 1]]) is None
    assert krippendorff_alpha([[1, 1], [2, 2]]) == 1.0


def test_ordinal_alpha_matches_the_paper_and_a_hand_count() -> None:
    # The same paper gives ordinal 0.815 for its reliability data.
    assert krippendorff_alpha(RELIABILITY_DATA, "ordinal") == pytest.approx(0.815, abs=5e-4)
    # Two raters on three items: (1,1), (2,3), (3,3). Value counts n1=2, n2=1, n3=3, n=6.
    # delta(a,b) = (sum of counts from a to b - (n_a + n_b)/2)^2:
    # d(1,2) = (3 - 1.5)^2 = 2.25, d(2,3) = (4 - 2)^2 = 4, d(1,3) = (6 - 2.5)^2 = 12.25.
    # D_o = 2*d(2,3)/6 = 4/3; D_e = 2*(2*1*2.25 + 2*3*12.25 + 1*3*4)/30 = 6; alpha = 7/9.
    assert krippendorff_alpha([[1, 1], [2, 3], [3, 3]], "ordinal") == pytest.approx(7 / 9)
    # Only the order counts: the same ranks spaced unevenly give the same alpha.
    assert krippendorff_alpha([[0, 0], [0.1, 1], [1, 1]], "ordinal") == pytest.approx(7 / 9)
    # Interval on the same numbers differs: spacing matters there.
    assert krippendorff_alpha([[1, 1], [2, 3], [3, 3]], "interval") != pytest.approx(7 / 9)


def test_faces_and_stars_are_ordinal_thumbs_nominal() -> None:
    from tuneback.domain.agreement import agreement_level
    from tuneback.domain.feedback import (
        BUILTIN_CONFIGS,
        CategoricalConfig,
        Category,
        ContinuousConfig,
    )

    levels = {key: agreement_level(key, config) for key, config in BUILTIN_CONFIGS.items()}
    assert levels == {"thumbs": "nominal", "faces": "ordinal", "stars": "ordinal"}
    labels = CategoricalConfig(categories=[Category(label="a"), Category(label="b")])
    assert agreement_level("topic", labels) == "nominal"
    ranked = CategoricalConfig(
        categories=[Category(label=x, score=i / 2) for i, x in enumerate("lmh")]
    )
    assert agreement_level("level", ranked) == "ordinal"
    assert agreement_level("accuracy", ContinuousConfig(min=0, max=10)) == "interval"
