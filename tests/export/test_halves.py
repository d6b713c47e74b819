"""A big export's second half, read by a second process: the files are those of one process.

The runs needed to split an export are lowered to a handful here, so the real
second process (spawned, with its own connection) reads a small store.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from tests.export.seed import add_runs, seed
from tuneback.errors import StorageError
from tuneback.export import export_dataset, halves, preferences
from tuneback.export.encoding import RowEncoding
from tuneback.export.filters import ExportRules
from tuneback.export.halves import SecondHalf, _Half
from tuneback.storage import Store
from tuneback.storage import tables as t
from tuneback.storage.export_queries import RunSelection, count_rated_runs, middle_group


class Descriptions:
    """Progress that keeps what each source is called, its total and the records read of it."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.totals: list[int | None] = []
        self.read: list[int] = []

    def begin(self, description: str, total: int | None) -> None:
        self.names.append(description)
        self.totals.append(total)
        self.read.append(0)

    def advance(self, records: int) -> None:
        self.read[-1] += records


def add_twins(store: Store) -> None:
    """Two runs with the same prompt, answer and rating, one in each half: one row, not two."""
    created = datetime(2026, 2, 1, tzinfo=UTC)
    twins = ["aaa-twin", "zzz-twin"]
    with store.engine.begin() as conn:
        conn.execute(
            insert(t.runs),
            [
                {
                    "id": run_id,
                    "project": "demo",
                    "run_type": "llm",
                    "params": {},
                    "inputs": [{"role": "user", "content": "Same question"}],
                    "output": "Same answer",
                    "status": "ok",
                    "tags": [],
                    "metadata": {},
                    "created_at": created,
                }
                for run_id in twins
            ],
        )
        conn.execute(
            insert(t.feedback),
            [
                {
                    "id": f"fb-{run_id}",
                    "project": "demo",
                    "run_id": run_id,
                    "key": "thumbs",
                    "kind": "explicit",
                    "score": 1.0,
                    "value": 1,
                    "source": "api",
                    "metadata": {},
                    "current": True,
                    "created_at": created,
                }
                for run_id in twins
            ],
        )


@pytest.fixture
def big(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The export rules' cases, twins in both halves and 40 more runs, counted as big."""
    seed(store)
    add_twins(store)
    add_runs(store, 0, 40)
    monkeypatch.setattr(halves, "HALVES_MIN_RUNS", 4)
    return store


SPLIT_SOURCES = {
    "sft": ["runs", "runs (second half)"],
    "openai-sft": ["runs", "runs (second half)"],
    "kto": ["runs", "runs (second half)"],
    "runs": ["runs", "runs (second half)"],
    # Rated answers are split by group; comparisons and corrections are read once.
    "dpo": ["comparisons", "corrections", "rated answers", "rated answers (second half)"],
    "openai-preference": [
        "comparisons",
        "corrections",
        "rated answers",
        "rated answers (second half)",
    ],
}


@pytest.mark.parametrize("format", SPLIT_SOURCES)
def test_two_processes_write_what_one_writes(big: Store, tmp_path: Path, format: str) -> None:
    one = export_dataset(big, format=format, output=tmp_path / "one", split=0.3, processes=1)
    progress = Descriptions()
    two = export_dataset(
        big, format=format, output=tmp_path / "two", split=0.3, processes=2, progress=progress
    )
    assert progress.names == SPLIT_SOURCES[format]
    # A second half's total is what the second process read of it, not counted again.
    assert progress.totals == progress.read
    assert progress.read[-1] > 0
    assert two.model_dump(exclude={"files", "seconds"}) == one.model_dump(
        exclude={"files", "seconds"}
    )
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    for written in one.files:
        name = Path(written.path).name
        assert (tmp_path / "two" / name).read_bytes() == Path(written.path).read_bytes()
    assert one.rows_written > 0
    if format in ("sft", "kto"):
        # The second twin is the duplicate, whichever process read it.
        assert one.skipped["duplicate row"] >= 1


def test_only_the_first_half_is_counted_for_the_progress_bar(
    big: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[RunSelection] = []

    def count(store: Store, selection: RunSelection) -> int:
        counted.append(selection)
        return count_rated_runs(store, selection)

    monkeypatch.setattr(preferences, "count_rated_runs", count)
    progress = Descriptions()
    export_dataset(big, format="dpo", output=tmp_path, processes=2, progress=progress)
    assert [s.before_group is not None for s in counted] == [True]
    assert progress.totals == progress.read


def test_the_parquet_writer_gets_the_second_halfs_data(big: Store, tmp_path: Path) -> None:
    for processes in (1, 2):
        export_dataset(
            big,
            format="runs",
            output=tmp_path / str(processes),
            writer="parquet",
            processes=processes,
        )
    one = pq.read_table(tmp_path / "1" / "runs.parquet")
    two = pq.read_table(tmp_path / "2" / "runs.parquet")
    with big.engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    assert two.num_rows == one.num_rows == runs
    assert two.equals(one)


def test_a_small_export_stays_in_one_process(store: Store, tmp_path: Path) -> None:
    seed(store)
    progress = Descriptions()
    export_dataset(store, format="kto", output=tmp_path, progress=progress)
    assert progress.names == ["runs"]


def test_only_a_database_other_processes_see_is_split(store: Store) -> None:
    assert store.database.seen_by_other_processes
    with Store("sqlite://") as memory:
        assert not memory.database.seen_by_other_processes


def test_a_stopped_export_stops_the_second_process_and_leaves_no_files(
    big: Store, tmp_path: Path
) -> None:
    class Interrupted(Descriptions):
        def advance(self, records: int) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_dataset(big, format="kto", output=tmp_path / "out", progress=Interrupted())
    assert list((tmp_path / "out").iterdir()) == []
    assert second_halves() == []


def second_halves() -> list[int]:
    """The processes this one started to read a second half, still running."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
            command = (status.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # ended meanwhile
        if int(fields["PPid"]) == os.getpid() and b"tuneback.export.halves" in command:
            found.append(int(fields["Pid"]))
    return found


def half(url: str, spool: Path) -> _Half:
    return _Half(url, "kto", RunSelection(), ExportRules(), RowEncoding(), spool, os.getpid())


def test_what_stops_the_second_process_is_raised_here(tmp_path: Path) -> None:
    # The second process opens without migrating: a database without tables stops it.
    second = SecondHalf(half(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "spool"))
    try:
        # Its total is what it spooled before it stopped, so the error itself is raised.
        assert second.total(0) == 0
        with pytest.raises(OperationalError, match="no such table: runs"):
            list(second.records(0))
    finally:
        second.close()
    assert not (tmp_path / "spool").exists()


def test_a_second_process_that_dies_is_an_error_not_a_short_file(
    store_url_only: str, tmp_path: Path
) -> None:
    second = SecondHalf(half(store_url_only, tmp_path / "spool"))
    second._process.kill()
    try:
        ended = r"ended \(exit code -9\) before it finished: export again"
        with pytest.raises(StorageError, match=ended):
            second.total(0)
        with pytest.raises(StorageError, match=ended):
            list(second.records(0))
    finally:
        second.close()


def test_a_second_process_whose_export_is_gone_stops_and_deletes_its_spool(
    store_url_only: str, tmp_path: Path
) -> None:
    orphan = replace(half(store_url_only, tmp_path / "spool"), parent=os.getpid() + 1_000_000)
    second = SecondHalf(orphan)
    try:
        with pytest.raises(StorageError, match=r"exit code 0"):
            list(second.records(0))
        assert not (tmp_path / "spool").exists()
    finally:
        second.close()


def test_the_middle_group_splits_the_rated_answers_into_two_halves(big: Store) -> None:
    everything = RunSelection()
    middle = middle_group(big, everything, at_least=4)
    assert middle is not None
    first = count_rated_runs(big, replace(everything, before_group=middle))
    second = count_rated_runs(big, replace(everything, from_group=middle))
    assert first > 0
    assert second > 0
    assert first + second == count_rated_runs(big, everything)
    assert middle_group(big, everything, at_least=1_000_000) is None
