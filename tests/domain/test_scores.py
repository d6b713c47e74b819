import pytest

from tuneback.domain import (
    CategoricalConfig,
    Category,
    ContinuousConfig,
    FreeformConfig,
    describe_value,
    normalize_score,
)
from tuneback.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "score"),
    [("up", 1.0), ("👍", 1.0), (True, 1.0), (1, 1.0), ("down", 0.0), ("👎", 0.0), (False, 0.0)],
)
def test_thumbs(value: object, score: float) -> None:
    assert normalize_score("thumbs", value) == score  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "score"),
    [("😞", 0.0), ("🙁", 0.25), ("😐", 0.5), ("🙂", 0.75), ("😀", 1.0), (1, 0.0), (4, 0.75)],
)
def test_faces(value: object, score: float) -> None:
    assert normalize_score("faces", value) == score  # type: ignore[arg-type]


@pytest.mark.parametrize(("stars", "score"), [(1, 0.0), (2, 0.25), (3, 0.5), (4, 0.75), (5, 1.0)])
def test_stars_n_of_five(stars: int, score: float) -> None:
    assert normalize_score("stars", stars) == score


def test_declared_numeric_range_maps_linearly() -> None:
    config = ContinuousConfig(min=0, max=10)
    assert normalize_score("quality", 7.5, config) == 0.75
    with pytest.raises(ValidationError, match="between 0 and 10, got 11"):
        normalize_score("quality", 11, config)


def test_categorical_labels_and_freeform() -> None:
    config = CategoricalConfig(
        categories=[Category(label="correct", score=1), Category(label="partly", score=0.5)]
    )
    assert normalize_score("verdict", "Partly", config) == 0.5
    with pytest.raises(ValidationError, match="takes one of: correct, partly; got 'nope'"):
        normalize_score("verdict", "nope", config)
    assert normalize_score("note", "anything at all", FreeformConfig()) is None


def test_unconfigured_key_takes_a_score_in_unit_range() -> None:
    assert normalize_score("helpful", 0.3) == 0.3
    assert normalize_score("helpful", None) is None
    with pytest.raises(ValidationError, match="declare min/max"):
        normalize_score("helpful", 3)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("thumbs", "sideways", "thumbs takes up/down"),
        ("faces", 6, "faces takes one of"),
        ("stars", 0, "stars must be between 1 and 5, got 0"),
        ("stars", "many", "stars takes a number"),
        ("stars", float("nan"), "finite"),
    ],
)
def test_bad_values_name_the_rule(key: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        normalize_score(key, value)  # type: ignore[arg-type]


def test_continuous_config_needs_an_order() -> None:
    with pytest.raises(ValueError, match="max > min"):
        ContinuousConfig(min=5, max=5)


def test_describe_value() -> None:
    assert [describe_value("thumbs", v) for v in ("up", "down")] == ["👍", "👎"]
    assert describe_value("faces", 5) == "😀"
    assert describe_value("stars", 3) == "★★★☆☆"
    assert describe_value("note", None) == ""
