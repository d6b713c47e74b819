"""Rows are JSON either way: orjson for speed, the standard library for what orjson refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.export.conftest import read_jsonl
from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.domain.json_encoding import json_bytes, json_text
from tuneback.export import export_dataset
from tuneback.storage import Store

BIG = 2**70 + 1


def test_plain_rows_are_compact_utf8_json() -> None:
    row = {"prompt": [{"role": "user", "content": "héllo ✓"}], "score": 0.75, "ok": True}
    row["at"] = datetime(2026, 3, 1, 12, 30, 0, 250, tzinfo=UTC)
    assert (
        json_bytes(row)
        == (
            '{"prompt":[{"role":"user","content":"héllo ✓"}],"score":0.75,"ok":true,'
            '"at":"2026-03-01T12:30:00.000250+00:00"}'
        ).encode()
    )


def test_integers_beyond_64_bits_fall_back_to_the_standard_encoder() -> None:
    line = json_bytes({"seed": BIG, "tags": ["é"], "at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert line == f'{{"seed":{BIG},"tags":["é"],"at":"2026-01-01T00:00:00+00:00"}}'.encode()
    assert json.loads(line) == {"seed": BIG, "tags": ["é"], "at": "2026-01-01T00:00:00+00:00"}


def test_keys_that_are_not_text_fall_back_like_the_standard_encoder() -> None:
    assert json_bytes({1: "a", None: [2], 2.5: False}) == b'{"1":"a","null":[2],"2.5":false}'


def test_a_lone_surrogate_is_escaped_so_the_line_stays_valid_utf8() -> None:
    line = json_bytes({"content": "a\ud800é"})
    assert line == b'{"content":"a\\ud800\\u00e9"}'
    assert json.loads(line.decode("utf-8")) == {"content": "a\ud800é"}
    assert json_text(["x", BIG]) == f'["x",{BIG}]'


def test_a_run_with_a_huge_integer_in_its_metadata_exports_it_exactly(
    store: Store, tmp_path: Path
) -> None:
    run = Run(
        id="run-big",
        project="p",
        inputs=[ChatMessage(role="user", content="hi")],
        output="hello",
        params={"seed": BIG},
        metadata={"trace": [BIG, -BIG], "name": "ok"},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    store.append(RunCompleted(run=run))
    summary = export_dataset(store, format="runs", output=tmp_path)
    [row] = read_jsonl(summary.files[0].path)
    assert (row["id"], json.loads(row["params"]), json.loads(row["metadata"])) == (
        "run-big",
        {"seed": BIG},
        {"trace": [BIG, -BIG], "name": "ok"},
    )
