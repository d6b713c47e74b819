"""Searching runs by text: ``%``, ``_`` and ``\\`` are plain characters, on both databases."""

from __future__ import annotations

import pytest

from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.storage import Store
from tuneback.storage.queries import Queries, RunFilter
from tuneback.storage.text_match import escape_like

OUTPUTS = {
    "percent": "I am 100% sure",
    "thousand": "There are 1000 of them",
    "hundred": "About 100 percent",
    "underscore": "call a_b here",
    "x": "call axb here",
    "backslash": r"C:\temp\new",
    "upper": "SHOUTING 100% Loud",
}


@pytest.fixture
def runs(store: Store) -> Store:
    events = [
        RunCompleted(
            run=Run(
                id=run_id,
                project="demo",
                model="echo",
                inputs=[ChatMessage(role="user", content="question")],
                output=output,
            )
        )
        for run_id, output in OUTPUTS.items()
    ]
    events.append(
        RunCompleted(
            run=Run(
                id="in-prompt",
                project="demo",
                model="echo",
                inputs=[ChatMessage(role="user", content="is it 100%?")],
                output="yes",
            )
        )
    )
    store.append_many(events)
    return store


def _found(store: Store, text: str) -> set[str]:
    rows, total = Queries(store).explore(RunFilter(project="demo", text=text), limit=100)
    assert total == len(rows)
    return {row["run"].id for row in rows}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100%", {"percent", "upper", "in-prompt"}),
        ("100", {"percent", "thousand", "hundred", "upper", "in-prompt"}),
        ("%", {"percent", "upper", "in-prompt"}),
        ("a_b", {"underscore"}),
        ("_", {"underscore"}),
        ("axb", {"x"}),
        ("\\temp", {"backslash"}),
        ("\\", {"backslash"}),
        ("shouting 100%", {"upper"}),
        ("%%", set()),
    ],
)
def test_wildcards_match_only_themselves(runs: Store, text: str, expected: set[str]) -> None:
    assert _found(runs, text) == expected


def test_escape_like() -> None:
    assert escape_like(r"100%_a\b") == r"100\%\_a\\b"
