"""Preference exports from votes: ties, both-bad and replaced votes give no pair, and say why."""

from __future__ import annotations

from pathlib import Path

from tests.export.conftest import read_jsonl
from tests.export.seed import Seeder, user
from tuneback.export import export_dataset
from tuneback.storage import Store


def test_only_the_newest_decisive_vote_makes_a_pair(store: Store, tmp_path: Path) -> None:
    s = Seeder()
    colour = [user("Name a colour.")]
    red = s.run("run-red", colour, "Red.", model="red-model")
    blue = s.run("run-blue", colour, "Blue.", model="blue-model")
    s.compare("vote-1", [red, blue], outcome="a", mode="anonymous")
    s.compare("vote-2", [red, blue], outcome="b", mode="anonymous", supersedes="vote-1")
    animal = [user("Name an animal.")]
    cat = s.run("run-cat", animal, "Cat.")
    dog = s.run("run-dog", animal, "Dog.")
    s.compare("vote-3", [cat, dog], outcome="tie", mode="named")
    s.compare("vote-4", [cat, dog], outcome="both_bad", mode="resample")
    store.append_many(s.events)

    summary = export_dataset(store, format="dpo", output=tmp_path)
    assert read_jsonl(summary.files[0].path) == [
        {
            "prompt": [{"role": "user", "content": "Name a colour."}],
            "chosen": [{"role": "assistant", "content": "Blue."}],
            "rejected": [{"role": "assistant", "content": "Red."}],
        }
    ]
    comparison_skips = {
        reason: count
        for reason, count in summary.skipped.items()
        if reason.startswith("comparison")
    }
    assert comparison_skips == {
        "comparison replaced by a re-vote": 1,
        "comparison is a tie": 1,
        "comparison judged both answers bad": 1,
    }
