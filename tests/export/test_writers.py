"""Every format read back by its consumer: datasets, pyarrow, csv, and OpenAI's schemas."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.export.conftest import read_jsonl
from tests.export.openai_schemas import PREFERENCE, SUPERVISED
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.export import FORMATS, ExportFilters, export_dataset
from tuneback.storage import Store

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")
jsonschema = pytest.importorskip("jsonschema")

TRAINING_COLUMNS = {
    "sft": ["messages"],
    "dpo": ["prompt", "chosen", "rejected"],
    "kto": ["prompt", "completion", "label"],
}


@pytest.mark.parametrize("format", sorted(TRAINING_COLUMNS))
def test_jsonl_loads_with_datasets(seeded: Store, tmp_path: Path, format: str) -> None:
    summary = export_dataset(seeded, format=format, output=tmp_path)
    loaded = datasets.load_dataset(
        "json", data_files=summary.files[0].path, split="train", cache_dir=str(tmp_path / "c")
    )
    assert loaded.column_names == TRAINING_COLUMNS[format]
    assert loaded.num_rows == summary.rows_written > 0
    assert loaded.to_list() == read_jsonl(summary.files[0].path)


@pytest.mark.parametrize("format", list(FORMATS))
def test_parquet_and_csv_hold_the_jsonl_rows(seeded: Store, tmp_path: Path, format: str) -> None:
    jsonl = read_jsonl(export_dataset(seeded, format=format, output=tmp_path).files[0].path)
    parquet = export_dataset(seeded, format=format, output=tmp_path, writer="parquet")
    table = pq.read_table(parquet.files[0].path)
    assert table.column_names == list(FORMATS[format].columns)
    as_json = json.loads(json.dumps(table.to_pylist(), default=lambda v: v.isoformat()))
    assert as_json == jsonl

    written = export_dataset(seeded, format=format, output=tmp_path, writer="csv")
    with open(written.files[0].path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(jsonl)
    for row, expected in zip(rows, jsonl, strict=True):
        for name, value in expected.items():
            cell = row[name]
            if isinstance(value, list | dict):
                assert json.loads(cell) == value
            elif value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == str(value).lower()
            else:
                assert cell == str(value) or float(cell) == value


def test_hf_directory_with_a_split_keeps_each_prompt_in_one_split(
    seeded: Store, tmp_path: Path
) -> None:
    summary = export_dataset(seeded, format="kto", output=tmp_path, writer="hf", split=0.5)
    loaded = datasets.load_from_disk(str(tmp_path / "kto"))
    assert sorted(loaded) == ["test", "train"]
    counts = {file.split: file.rows for file in summary.files}
    assert {name: loaded[name].num_rows for name in loaded} == counts
    assert min(counts.values()) > 0
    prompts = {name: {json.dumps(r["prompt"]) for r in loaded[name]} for name in loaded}
    assert not prompts["train"] & prompts["test"]
    again = export_dataset(
        seeded, format="kto", output=tmp_path, writer="hf", split=0.5, force=True
    )
    assert again.files == summary.files


def test_openai_lines_match_openai_schemas(seeded: Store, tmp_path: Path) -> None:
    sft = export_dataset(seeded, format="openai-sft", output=tmp_path)
    preference = export_dataset(seeded, format="openai-preference", output=tmp_path)
    assert (sft.rows_written, preference.rows_written) == (5, 7)
    for row in read_jsonl(sft.files[0].path):
        jsonschema.validate(row, SUPERVISED)
    for row in read_jsonl(preference.files[0].path):
        jsonschema.validate(row, PREFERENCE)


def test_dedup_drops_repeated_rows(seeded: Store, tmp_path: Path) -> None:
    kept = export_dataset(seeded, format="dpo", output=tmp_path / "a")
    every = export_dataset(seeded, format="dpo", output=tmp_path / "b", dedup=False)
    # cmp-1 and the sibling pairs are unique, but "Hi!" vs "hello" appears once either way;
    # dedup matters when two comparisons judge the same pair the same way.
    assert every.rows_written >= kept.rows_written
    assert "duplicate row" not in every.skipped


def test_existing_files_are_kept_unless_forced(seeded: Store, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    export_dataset(seeded, format="sft", output=tmp_path)
    with pytest.raises(ConflictError, match=r"sft\.jsonl exists: pass --force"):
        export_dataset(seeded, format="sft", output=tmp_path)
    (tmp_path / "sft.jsonl").write_text("old\n")
    export_dataset(seeded, format="sft", output=tmp_path, force=True)
    assert (tmp_path / "sft.jsonl").read_text() != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft.jsonl"]


def test_nothing_is_written_outside_the_directory(seeded: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    directory = tmp_path / "out"
    directory.mkdir()
    os.symlink(outside, directory / "sft.jsonl")
    with pytest.raises(ValidationError, match="symbolic link"):
        export_dataset(seeded, format="sft", output=directory, force=True)
    assert not outside.exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationError, match="is a file"):
        export_dataset(seeded, format="sft", output=tmp_path / "file")
    (directory / "kto").mkdir()
    (directory / "kto" / "notes.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not a saved dataset"):
        export_dataset(seeded, format="kto", output=directory, writer="hf", force=True)
    assert (directory / "kto" / "notes.txt").read_text() == "mine"


def test_bad_options_are_refused(seeded: Store, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown export format 'sfx'"):
        export_dataset(seeded, format="sfx", output=tmp_path)
    with pytest.raises(ValidationError, match="unknown writer"):
        export_dataset(seeded, format="sft", output=tmp_path, writer="xml")
    with pytest.raises(NotFoundError, match="no dataset named nope"):
        export_dataset(seeded, format="sft", output=tmp_path, filters=ExportFilters(dataset="nope"))
