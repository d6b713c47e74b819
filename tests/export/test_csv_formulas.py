"""CSV exports cannot smuggle spreadsheet formulas: formula-like cells read back as text."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneback.cli import app
from tuneback.domain import ChatMessage, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.export import export_dataset
from tuneback.storage import Store

HOSTILE = {
    "r-eq": '=HYPERLINK("http://evil.test","click")',
    "r-plus": "+1+cmd|' /C calc'!A0",
    "r-minus": "-2+3",
    "r-at": "@SUM(A1:A9)",
    "r-tab": "\t=1+1",
    "r-cr": "\r=1+1",
    "r-plain": "a = b, and -1 is fine inside",
}


def _seed(store: Store) -> None:
    events: list[RunCompleted | FeedbackRecorded] = []
    for run_id, text in HOSTILE.items():
        events.append(
            RunCompleted(
                run=Run(
                    id=run_id,
                    project="demo",
                    model="echo",
                    user="=cmd",
                    inputs=[ChatMessage(role="user", content=text)],
                    output=text,
                )
            )
        )
    events.append(
        FeedbackRecorded(
            feedback=Feedback(
                id="f1",
                project="demo",
                run_id="r-eq",
                key="thumbs",
                value="up",
                score=1.0,
                comment="@evil",
            )
        )
    )
    store.append_many(events)


def _read(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_formula_cells_get_a_leading_quote(store: Store, tmp_path: Path) -> None:
    _seed(store)
    summary = export_dataset(store, format="runs", output=tmp_path, writer="csv")
    rows = {row["id"]: row for row in _read(summary.files[0].path)}
    outputs = {run_id: row["output"] for run_id, row in rows.items()}
    assert outputs == {
        run_id: text if run_id == "r-plain" else "'" + text for run_id, text in HOSTILE.items()
    }
    assert {row["user"] for row in rows.values()} == {"'=cmd"}
    # Numbers stay numbers, and JSON cells start with [ or {, never a formula.
    assert rows["r-eq"]["score"] == "1.0"
    assert rows["r-eq"]["inputs"].startswith("[")

    feedback = export_dataset(store, format="feedback", output=tmp_path, writer="csv")
    assert [row["comment"] for row in _read(feedback.files[0].path)] == ["'@evil"]


def test_raw_csv_keeps_cells_as_they_are(store: Store, tmp_path: Path) -> None:
    _seed(store)
    summary = export_dataset(store, format="runs", output=tmp_path, writer="csv", raw_csv=True)
    rows = _read(summary.files[0].path)
    assert {row["id"]: row["output"] for row in rows} == HOSTILE
    assert {row["user"] for row in rows} == {"=cmd"}


@pytest.mark.parametrize("raw", [False, True])
def test_the_cli_neutralises_unless_raw_csv(store: Store, tmp_path: Path, raw: bool) -> None:
    _seed(store)
    args = ["export", "runs", "--output", str(tmp_path), "--writer", "csv"]
    args += ["--database-url", str(store.url)] + (["--raw-csv"] if raw else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = _read(str(tmp_path / "runs.csv"))
    expected = '=HYPERLINK("http://evil.test","click")'
    assert {row["id"]: row["output"] for row in rows}["r-eq"] == (
        expected if raw else "'" + expected
    )


def test_help_documents_raw_csv() -> None:
    result = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert "--raw-csv" in result.output
    assert "formula" in result.output
