"""Progress: each source announces its size, and the steps reported add up to what was read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneback.export import export_dataset, exporter
from tuneback.storage import Store


class RecordedProgress:
    def __init__(self) -> None:
        self.sources: list[tuple[str, int | None, int]] = []
        self.steps: list[int] = []

    def begin(self, description: str, total: int | None) -> None:
        self.sources.append((description, total, 0))

    def advance(self, records: int) -> None:
        self.steps.append(records)
        description, total, done = self.sources[-1]
        self.sources[-1] = (description, total, done + records)


@pytest.mark.parametrize("step", [2, exporter.PROGRESS_STEP])
def test_every_source_reports_all_its_records(
    seeded: Store, tmp_path: Path, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporter, "PROGRESS_STEP", step)
    progress = RecordedProgress()
    summary = export_dataset(seeded, format="dpo", output=tmp_path, progress=progress)
    assert [name for name, _, _ in progress.sources] == [
        "comparisons",
        "corrections",
        "rated answers",
    ]
    assert all(total == done for _, total, done in progress.sources), progress.sources
    assert sum(done for _, _, done in progress.sources) == summary.records_read == 14
    # Steps of at least `step` records, but for the rest of each source at its end.
    assert len(progress.steps) <= 14 // step + len(progress.sources)
