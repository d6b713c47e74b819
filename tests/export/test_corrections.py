"""A corrected run's pair is read from its correction, its score looked up by its id.

The score filters and ``key`` apply to corrected runs as to every run: the
correction of run-c1 (rated thumbs-down, 0.0) pairs only while its score is in
range, and a key it was never rated on leaves it without a score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.export.conftest import read_jsonl
from tuneback.export import ExportFilters, export_dataset
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, count_corrected_runs, iter_corrected_runs

SAY_HI = {
    "prompt": [{"role": "user", "content": "Say hi"}],
    "chosen": [{"role": "assistant", "content": "Hi!"}],
    "rejected": [{"role": "assistant", "content": "hello"}],
}


@pytest.mark.parametrize(
    ("filters", "paired"),
    [
        ({}, True),
        ({"key": "thumbs", "max_score": 0.5}, True),
        ({"min_score": 0.5}, False),
        ({"key": "stars"}, True),
        ({"key": "stars", "max_score": 1.0}, False),
        ({"project": "other"}, False),
    ],
)
def test_corrections_follow_the_filters(
    seeded: Store, tmp_path: Path, filters: dict[str, Any], paired: bool
) -> None:
    summary = export_dataset(
        seeded, format="dpo", output=tmp_path, filters=ExportFilters(**filters)
    )
    assert (SAY_HI in read_jsonl(summary.files[0].path)) is paired


def test_a_corrected_run_comes_with_its_score_and_correction(seeded: Store) -> None:
    runs = list(iter_corrected_runs(seeded, RunSelection()))
    assert [(run.id, run.output, run.score, run.correction) for run in runs] == [
        ("run-c1", "hello", 0.0, "Hi!")
    ]
    assert runs[0].inputs == [{"role": "user", "content": "Say hi"}]
    assert count_corrected_runs(seeded, RunSelection()) == 1
    unrated = list(iter_corrected_runs(seeded, RunSelection(key="stars")))
    assert [(run.id, run.score) for run in unrated] == [("run-c1", None)]
    assert count_corrected_runs(seeded, RunSelection(min_score=0.5)) == 0
