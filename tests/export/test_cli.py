"""``tuneback export`` end to end: whole outputs, with times and paths normalised."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from tests.export.conftest import read_jsonl
from tests.export.seed import seed
from tuneback.cli import app
from tuneback.storage import Store

runner = CliRunner()


def normalised(text: str, tmp_path: Path) -> list[str]:
    text = text.replace(str(tmp_path.resolve()), "TMP")
    text = re.sub(r"in \d+\.\d s", "in N s", text)
    return [line.rstrip() for line in text.splitlines()]


def test_export_dpo_prints_the_summary(database_url: str, tmp_path: Path) -> None:
    with Store(database_url) as store:
        seed(store)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", "dpo", "--output", str(out), "--split", "0.5", "-d", database_url]
    )
    assert result.exit_code == 0, result.output
    lines = normalised(result.output, tmp_path)
    train = len(read_jsonl(out / "dpo-train.jsonl"))
    test = len(read_jsonl(out / "dpo-test.jsonl"))
    assert train + test == 7
    assert lines == [
        "dpo → jsonl: 7 rows written, 7 skipped, from 14 records in N s",
        f"  train  {train:>9}  TMP/out/dpo-train.jsonl",
        f"  test   {test:>9}  TMP/out/dpo-test.jsonl",
        "skipped:",
        "          3  no other rated answer to the same prompt",
        "          1  comparison is a tie",
        "          1  inputs are not chat messages",
        "          1  run did not complete (error or cancelled)",
        "          1  score gap to the best answer below 0.5",
    ]


def test_export_refuses_to_overwrite_and_explains(database_url: str, tmp_path: Path) -> None:
    with Store(database_url) as store:
        seed(store)
    args = ["export", "sft", "-o", str(tmp_path / "out"), "--project", "other", "-d", database_url]
    first = runner.invoke(app, args)
    assert normalised(first.output, tmp_path) == [
        "sft → jsonl: 1 rows written, 0 skipped, from 1 records in N s",
        "  train          1  TMP/out/sft.jsonl",
    ]
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert isinstance(again.exception, Exception)
    assert (
        str(again.exception)
        == f"{(tmp_path / 'out').resolve()}/sft.jsonl exists: pass --force to overwrite it"
    )
    forced = runner.invoke(app, [*args, "--force", "--writer", "parquet"])
    assert forced.exit_code == 0, forced.output


def test_help_states_the_rules() -> None:
    result = runner.invoke(app, ["export", "--help"], terminal_width=100)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in (
        "scoring >= --threshold (default 0.7)",
        "rated at least --min-gap (default 0.5) lower",
        "score >= --threshold → label true",
        "<sft|dpo|kto|openai-sft|openai-preference|runs|feedback>",
    ):
        assert phrase in text, phrase
