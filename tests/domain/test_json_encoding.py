"""JSON read by the fast parser gives exactly what the standard library reads."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tuneback.domain.json_encoding import json_loads, json_text

BIG = 2**70 + 1

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 and 1.0 differ; -0.0 and 0.0 too)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.copysign(1, a) == math.copysign(1, b) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_non_finite, value.values()))
    if isinstance(value, list):
        return any(map(_non_finite, value))
    return False


@given(values)
def test_any_json_reads_back_as_the_standard_library_reads_it(value: Any) -> None:
    texts = [json.dumps(value), json.dumps(value, ensure_ascii=False)]
    if not _non_finite(value):  # stored JSON never holds them: orjson writes null
        texts.append(json_text(value))
    for text in texts:
        assert same(json_loads(text), json.loads(text))
        assert same(json_loads(text.encode("utf-8", "surrogatepass")), json.loads(text))


def test_integers_beyond_64_bits_stay_integers() -> None:
    assert json_loads(f'{{"seed":{BIG},"n":[-{BIG}]}}') == {"seed": BIG, "n": [-BIG]}
    assert type(json_loads(f"[{2**64 - 1}]")[0]) is int


def test_what_the_fast_parser_refuses_is_read_by_the_standard_library() -> None:
    assert json_loads('"a\\ud800"') == "a\ud800"
    assert math.isnan(json_loads("NaN"))
    assert json_loads('{"a":1,"a":2}') == {"a": 2}


def test_stored_text_is_compact_and_escapes_a_lone_surrogate() -> None:
    assert json_text({"k": ["é", 1.5, None]}) == '{"k":["é",1.5,null]}'
    assert json_text({"content": "a\ud800"}) == '{"content":"a\\ud800"}'
    assert json_text([BIG]) == f"[{BIG}]"
