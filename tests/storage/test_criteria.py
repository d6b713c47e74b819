"""Each criterion of RunCriteria selects exactly the runs it says, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tuneback.domain import QueueRule
from tuneback.domain.criteria import HAS_KINDS, RunCriteria
from tuneback.storage import Store
from tuneback.storage import tables as t
from tuneback.storage.criteria import run_conditions
from tuneback.storage.queries import Queries

from .criteria_seed import ALL, DATASET_ID, PROJECT, at, seed_events


@pytest.fixture
def seeded(store: Store) -> Store:
    store.append_many(seed_events())
    return store


def selected(store: Store, criteria: RunCriteria) -> set[str]:
    query = select(t.runs.c.id).where(*run_conditions(criteria))
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("nothing", {}, ALL),
    ("project", {"project": "other"}, {"elsewhere"}),
    (
        "one model",
        {"model": "alpha"},
        {"liked", "noted", "corrected", "changed-mind", "disliked-with-correction"},
    ),
    (
        "any of models",
        {"model": ["alpha", "gamma"]},
        {"liked", "noted", "regenerated", "corrected", "changed-mind", "disliked-with-correction"},
    ),
    ("user", {"user": "ann"}, {"liked", "regenerated"}),
    ("conversation", {"conversation_id": "conv-1"}, {"liked", "noted"}),
    ("status", {"status": "error"}, {"failed"}),
    ("since", {"since": at(2)}, ALL - {"liked", "failed"}),
    ("until", {"until": at(3)}, {"liked", "failed", "noted"}),
    # Without started_at a run ran when it was recorded (3 h and 2 s).
    ("since and until", {"since": at(3), "until": at(4)}, {"regenerated"}),
    ("tag", {"tag": "vip"}, {"liked", "untouched"}),
    ("another tag", {"tag": "slow"}, {"failed", "untouched"}),
    (
        "has feedback on a key",
        {"has_feedback": "thumbs"},
        {"liked", "changed-mind", "disliked-with-comment", "disliked-with-correction"},
    ),
    # The note on changed-mind was retracted.
    ("has feedback on another key", {"has_feedback": "note"}, {"noted"}),
    # changed-mind's thumbs-down was superseded by a thumbs-up.
    (
        "score range on a key",
        {"score_key": "thumbs", "max_score": 0},
        {"disliked-with-comment", "disliked-with-correction"},
    ),
    ("score range on any key", {"min_score": 0.7}, {"liked", "corrected", "changed-mind"}),
    ("score range on stars", {"score_key": "stars", "min_score": 0.5}, {"corrected"}),
    ("score between", {"min_score": 0.2, "max_score": 0.3}, {"failed"}),
    ("has feedback (not implicit)", {"has": "feedback"}, ALL - {"regenerated", "untouched"}),
    ("has no feedback", {"has": "none"}, {"untouched"}),
    ("has a comment", {"has": "comment"}, {"noted", "disliked-with-comment"}),
    ("has a correction", {"has": "correction"}, {"corrected", "disliked-with-correction"}),
    ("lacks a comment", {"lacks": "comment"}, ALL - {"noted", "disliked-with-comment"}),
    (
        "lacks a correction",
        {"lacks": "correction"},
        ALL - {"corrected", "disliked-with-correction"},
    ),
    ("min latency", {"min_latency_ms": 100}, {"liked", "regenerated", "corrected"}),
    ("max latency", {"max_latency_ms": 100}, {"liked", "noted"}),
    ("min tokens", {"min_tokens": 100}, {"noted"}),
    ("max tokens", {"max_tokens": 20}, ALL - {"noted"}),
    ("text in the answer", {"text": "HELLO"}, {"liked"}),
    ("text with a wildcard", {"text": "100%"}, {"untouched"}),
    ("text in the inputs", {"text": "question for noted"}, {"noted"}),
    ("dataset", {"dataset_id": DATASET_ID}, {"noted"}),
    ("model and a comment", {"model": "alpha", "has": "comment"}, {"noted"}),
    ("model and no feedback", {"model": "beta", "has": "none"}, {"untouched"}),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_criterion_selects_exactly_its_runs(
    seeded: Store, fields: dict[str, Any], expected: set[str]
) -> None:
    criteria = RunCriteria.model_validate({"project": PROJECT, **fields})
    assert selected(seeded, criteria) == expected


def test_the_explorer_and_the_api_list_select_what_the_translator_does(seeded: Store) -> None:
    queries = Queries(seeded)
    for _, fields, expected in CASES:
        criteria = RunCriteria.model_validate({"project": PROJECT, **fields})
        rows, total = queries.explore(criteria, limit=100)
        assert ({row["run"].id for row in rows}, total) == (expected, len(expected)), fields
        assert {run.id for run in queries.runs(criteria, limit=100).data} == expected, fields


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"has": "comment"}, {"noted", "disliked-with-comment"}),
        ({"has": "correction"}, {"corrected", "disliked-with-correction"}),
        (
            {"key": "thumbs", "max_score": 0, "lacks": "correction"},
            {"disliked-with-comment"},
        ),
        (
            {"key": "thumbs"},
            {"liked", "changed-mind", "disliked-with-comment", "disliked-with-correction"},
        ),
        ({"model": "beta", "tag": "slow", "status": "ok"}, {"untouched"}),
        ({"has": "none"}, {"untouched"}),
    ],
)
def test_a_queue_rule_is_a_criteria_of_its_project(
    seeded: Store, rule: dict[str, Any], expected: set[str]
) -> None:
    criteria = QueueRule.model_validate(rule).criteria(PROJECT)
    assert criteria.project == PROJECT
    assert selected(seeded, criteria) == expected


def test_has_names_every_kind_it_accepts() -> None:
    assert HAS_KINDS == ("feedback", "comment", "correction", "none")
    with pytest.raises(ValueError, match="has"):
        RunCriteria.model_validate({"has": "bogus"})
    with pytest.raises(ValueError, match="bogus"):
        RunCriteria.model_validate({"bogus": 1})


def test_an_alias_of_the_runs_is_filtered_by_the_same_rules(seeded: Store) -> None:
    """A correlated probe over a second copy of the runs selects what the table does."""
    other = t.runs.alias("other")
    with seeded.engine.connect() as conn:
        for _, fields, expected in CASES:
            criteria = RunCriteria.model_validate({"project": PROJECT, **fields})
            query = select(other.c.id).where(*run_conditions(criteria, other))
            assert set(conn.execute(query).scalars()) == expected, fields
