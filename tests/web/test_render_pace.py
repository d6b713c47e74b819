"""How often a streaming answer is rendered: a fifth of the time at most, and never far behind."""

from __future__ import annotations

import pytest

from tuneback.server.web.chat import RENDER_AT_MOST, RENDER_EVERY, render_gap


def test_quick_renders_wait_the_floor() -> None:
    assert render_gap(0.001, RENDER_EVERY) == RENDER_EVERY


def test_slower_renders_wait_four_times_as_long() -> None:
    assert render_gap(0.05, RENDER_EVERY) == pytest.approx(0.2)


@pytest.mark.parametrize("took", [0.3, 1.5, 30.0])
def test_a_slow_render_holds_the_answer_back_no_longer_than_the_cap(took: float) -> None:
    """One slow render (a busy machine, a code block's first highlighter) used to hold
    the text on screen back four times as long: 6 s after a render of 1.5 s."""
    assert render_gap(took, RENDER_EVERY) == RENDER_AT_MOST


def test_a_floor_above_the_cap_still_holds() -> None:
    assert render_gap(0.0, 2.0) == 2.0
    assert render_gap(5.0, 2.0) == 2.0
