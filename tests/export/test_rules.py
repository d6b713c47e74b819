"""Exactly which rows each format makes from the seeded store, and why the rest are skipped."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.export.conftest import read_jsonl
from tests.export.seed import T0
from tuneback.export import ExportFilters, ExportRules, export_dataset
from tuneback.storage import Store


def turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


SYSTEM = turn("system", "Be brief.")
SUM = [SYSTEM, turn("user", "What is 1 + 1?")]


def export_rows(store: Store, tmp_path: Path, format: str, **options: Any) -> tuple[list[Any], Any]:
    summary = export_dataset(store, format=format, output=tmp_path, **options)
    return read_jsonl(summary.files[0].path), summary


def test_sft_keeps_good_answers_and_corrections(seeded: Store, tmp_path: Path) -> None:
    rows, summary = export_rows(seeded, tmp_path, "sft")
    assert rows == [
        {"messages": [*SUM, turn("assistant", "2")]},
        {"messages": [*SUM, turn("assistant", "two")]},
        {"messages": [turn("user", "Capital of France?"), turn("assistant", "Paris")]},
        {"messages": [turn("user", "Say hi"), turn("assistant", "Hi!")]},
        {"messages": [turn("user", "Elsewhere"), turn("assistant", "there")]},
    ]
    assert summary.skipped == {
        "not rated": 6,
        "score below 0.7": 3,
        "run did not complete (error or cancelled)": 2,
        "inputs are not chat messages": 1,
    }
    assert (summary.records_read, summary.rows_written, summary.rows_skipped) == (17, 5, 12)


def test_dpo_pairs_from_comparisons_corrections_and_siblings(seeded: Store, tmp_path: Path) -> None:
    rows, summary = export_rows(seeded, tmp_path, "dpo")

    def pair(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict[str, Any]:
        return {
            "prompt": prompt,
            "chosen": [turn("assistant", chosen)],
            "rejected": [turn("assistant", rejected)],
        }

    rank = [turn("user", "Rank me")]
    # Comparisons and corrections come first, in id order.
    assert rows[:5] == [
        pair([turn("user", "Tell a story")], "Once upon a time.", "No."),
        pair(rank, "best", "middle"),
        pair(rank, "best", "worst"),
        pair(rank, "middle", "worst"),
        pair([turn("user", "Say hi")], "Hi!", "hello"),
    ]
    # Sibling groups come in the database's sort order of their prompts.
    assert sorted(rows[5:], key=json.dumps) == sorted(
        [
            pair([turn("user", "Capital of France?")], "Paris", "Lyon"),
            pair(SUM, "2", "3"),
        ],
        key=json.dumps,
    )
    assert summary.skipped == {
        # run-c1, run-g3 and run-x1 are the only rated answers to their prompts
        "no other rated answer to the same prompt": 3,
        "comparison is a tie": 1,  # cmp-2
        "inputs are not chat messages": 1,  # the chain step run-g2
        "run did not complete (error or cancelled)": 1,  # cmp-4's failed candidate
        "score gap to the best answer below 0.5": 1,  # 🙂 0.75 against 👍 1.0
    }


def test_a_smaller_gap_pairs_the_close_sibling_and_duplicates_are_dropped(
    seeded: Store, tmp_path: Path
) -> None:
    rows, summary = export_rows(seeded, tmp_path, "dpo", rules=ExportRules(min_gap=0.25))
    assert {
        "prompt": SUM,
        "chosen": [turn("assistant", "2")],
        "rejected": [turn("assistant", "two")],
    } in rows
    assert "score gap to the best answer below 0.25" not in summary.skipped
    again, _ = export_rows(seeded, tmp_path / "again", "dpo", rules=ExportRules(min_gap=0.25))
    assert again == rows


def test_kto_labels_by_threshold_and_corrections(seeded: Store, tmp_path: Path) -> None:
    rows, summary = export_rows(seeded, tmp_path, "kto")

    def row(prompt: list[dict[str, str]], text: str, label: bool) -> dict[str, Any]:
        return {"prompt": prompt, "completion": [turn("assistant", text)], "label": label}

    capital, hi = [turn("user", "Capital of France?")], [turn("user", "Say hi")]
    assert rows == [
        row(SUM, "2", True),
        row(SUM, "3", False),
        row(SUM, "two", True),
        row(capital, "Paris", True),
        row(capital, "Lyon", False),
        row(hi, "Hi!", True),
        row(hi, "hello", False),
        row([turn("user", "Elsewhere")], "there", True),
    ]
    assert summary.skipped == {
        "not rated": 6,
        "run did not complete (error or cancelled)": 2,
        "inputs are not chat messages": 1,
        "score between 0.3 and 0.7 (ambiguous)": 1,
    }


def test_openai_preference_has_the_same_pairs_in_openai_shape(
    seeded: Store, tmp_path: Path
) -> None:
    dpo, _ = export_rows(seeded, tmp_path / "dpo", "dpo")
    openai, _ = export_rows(seeded, tmp_path / "openai", "openai-preference")
    assert openai == [
        {
            "input": {"messages": row["prompt"]},
            "preferred_output": row["chosen"],
            "non_preferred_output": row["rejected"],
        }
        for row in dpo
    ]


def test_filters_narrow_the_runs(seeded: Store, tmp_path: Path) -> None:
    def sft(name: str, **filters: Any) -> list[Any]:
        rows, _ = export_rows(seeded, tmp_path / name, "sft", filters=ExportFilters(**filters))
        return [row["messages"][-1]["content"] for row in rows]

    assert sft("other", project="other") == ["there"]
    assert sft("demo", project="demo") == ["2", "two", "Paris", "Hi!"]
    assert sft("stars", key="stars") == ["Paris", "Hi!"]
    assert sft("late", since=T0 + timedelta(minutes=9)) == ["Paris", "Hi!", "there"]
    assert sft("early", until=T0 + timedelta(minutes=9)) == ["2", "two"]
    assert sft("low", max_score=0.5) == ["Hi!"]
    assert sft("model", models=("other-model",)) == []
    assert sft("dataset", dataset="greetings") == ["Hi!"]
    dpo, _ = export_rows(seeded, tmp_path / "dpo", "dpo", filters=ExportFilters(dataset="ds-1"))
    assert [row["chosen"][0]["content"] for row in dpo] == ["Hi!"]


def test_flat_tables_are_complete(seeded: Store, tmp_path: Path) -> None:
    runs, summary = export_rows(
        seeded, tmp_path / "runs", "runs", filters=ExportFilters(project="demo")
    )
    assert summary.rows_skipped == 0
    assert len(runs) == 16
    first = runs[0]
    assert {
        k: first[k] for k in ("id", "conversation_id", "status", "score", "feedback_count")
    } == {
        "id": "run-a1",
        "conversation_id": "conv-1",
        "status": "ok",
        "score": 1.0,
        "feedback_count": 1,
    }
    assert json.loads(first["feedback"])[0]["value"] == "up"

    current, _ = export_rows(seeded, tmp_path / "fb", "feedback")
    history, _ = export_rows(seeded, tmp_path / "all", "feedback", rules=ExportRules(history=True))
    assert (len(current), len(history)) == (11, 13)
    zero = next(row for row in current if row["run_id"] == "run-a2")
    assert (zero["score"], zero["comment"], zero["model"], zero["value"]) == (
        0.0,
        "wrong",
        "echo",
        '"down"',
    )
    assert {row["id"] for row in history} - {row["id"] for row in current} == {
        row["id"] for row in history if not row["current"]
    }
