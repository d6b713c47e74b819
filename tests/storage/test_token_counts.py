"""Token counts: the largest one a run may carry is stored and read back on both databases; a larger
one is refused where the run is built, before anything could be acknowledged."""

from __future__ import annotations

import pydantic
import pytest

from tuneback.domain import Run
from tuneback.domain.events import RunCompleted
from tuneback.domain.run import TOKEN_COUNT_MAX
from tuneback.storage import Store


def test_the_largest_token_count_round_trips(store: Store) -> None:
    run = Run(output="hi", prompt_tokens=TOKEN_COUNT_MAX, completion_tokens=TOKEN_COUNT_MAX)
    store.append(RunCompleted(run=run))

    stored = store.get_run(run.id)

    assert (stored.prompt_tokens, stored.completion_tokens) == (TOKEN_COUNT_MAX, TOKEN_COUNT_MAX)
    assert stored.total_tokens == 2 * TOKEN_COUNT_MAX
    assert [e.payload for e in store.events_after(0)] == [RunCompleted(run=run)]


@pytest.mark.parametrize("field", ["prompt_tokens", "completion_tokens"])
@pytest.mark.parametrize("count", [TOKEN_COUNT_MAX + 1, 2**63, 2**64])
def test_a_count_beyond_the_columns_is_refused_before_storing(field: str, count: int) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Run(output="hi", **{field: count})  # type: ignore[arg-type]

    assert refused.value.errors()[0]["loc"] == (field,)
    assert refused.value.errors()[0]["type"] == "less_than_equal"
