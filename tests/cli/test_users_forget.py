"""``tuneback users forget``: asks, forgets, prints the counts, audits; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.storage.test_forget import ALICE, ALICE_TEXT, BOB_TEXT, PROJECT, all_text, seed
from tuneback.cli import app
from tuneback.storage import Store

runner = CliRunner()

COUNTS = {
    "conversations": 1,
    "messages": 2,
    "runs": 4,
    "feedback": 8,
    "comparisons": 1,
    "dataset_items": 1,
    "events": 21,
}
REMOVED = (
    "1 conversations, 2 messages, 4 runs, 8 feedback, 1 comparisons, 1 dataset items, 21 events"
)


def events_cli(database_url: str, *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["events", "-d", database_url, *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_forget_asks_first_and_a_no_changes_nothing(database_url: str) -> None:
    with Store(database_url) as store:
        seed(store)
    before = events_cli(database_url)
    result = runner.invoke(app, ["users", "forget", ALICE, "-d", database_url], input="n\n")
    assert result.exit_code == 1
    assert result.output == (
        f"Forget user '{ALICE}' in every project? This cannot be undone [y/N]: n\n"
        "nothing was forgotten\n"
    )
    assert events_cli(database_url) == before


def test_forget_removes_the_user_prints_counts_and_audits(database_url: str) -> None:
    with Store(database_url) as store:
        _, _, ids = seed(store)
    before = events_cli(database_url)

    result = runner.invoke(
        app, ["users", "forget", ALICE, "--project", PROJECT, "-d", database_url], input="y\n"
    )

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Forget user '{ALICE}' in project {PROJECT}? This cannot be undone [y/N]: y",
        f"forgot {ALICE} in project {PROJECT}: {REMOVED}",
    ]
    after = events_cli(database_url)
    # Same places in the log; tombstones where Alice was; one audit at the end.
    assert [(e["seq"], e["id"]) for e in after[:-1]] == [(e["seq"], e["id"]) for e in before]
    tombstones = [e for e in after if e["type"] == "event.forgotten"]
    assert len(tombstones) == COUNTS["events"]
    assert {str(e["id"]) for e in tombstones} <= set(ids)
    for event in tombstones:
        payload = event["payload"]
        assert isinstance(payload, dict)
        assert set(payload) == {"project", "was", "forgotten_at", "dataset_id", "task_id"}
    assert ALICE_TEXT not in json.dumps(after)
    assert BOB_TEXT in json.dumps(after)
    audit = after[-1]
    assert audit["seq"] == before[-1]["seq"] + 1  # type: ignore[operator]
    assert audit["type"] == "audit.recorded"
    assert audit["project"] == PROJECT
    assert audit["payload"] == {
        "action": "user.forgotten",
        "actor": "cli",
        "project": PROJECT,
        "target": ALICE,
        "details": COUNTS,
    }
    # The only trace of the name is the audit that says it was forgotten.
    with Store(database_url) as store:
        dump = all_text(store)
    assert ALICE_TEXT not in dump
    assert dump.count(ALICE) == 1

    rebuilt = runner.invoke(app, ["db", "rebuild", "-d", database_url])
    assert rebuilt.exit_code == 0, rebuilt.output
    with Store(database_url) as store:
        assert ALICE_TEXT not in all_text(store)
        assert store.list_conversations(PROJECT, user=ALICE) == []


def test_forget_with_yes_does_not_ask_and_a_second_time_is_an_error(
    database_url: str, tmp_path: Path
) -> None:
    with Store(database_url) as store:
        seed(store)
    first = runner.invoke(app, ["users", "forget", ALICE, "--yes", "-d", database_url])
    assert first.exit_code == 0, first.output
    assert first.output == f"forgot {ALICE} in every project: {REMOVED}\n"

    again = runner.invoke(app, ["users", "forget", ALICE, "--yes", "-d", database_url])
    assert again.exit_code == 1
    assert again.output == f"error: no data for user '{ALICE}': nothing to forget\n"
    nobody = runner.invoke(
        app, ["users", "forget", "nobody", "-y", "-p", "elsewhere", "-d", database_url]
    )
    assert nobody.exit_code == 1
    assert nobody.output == (
        "error: no data for user 'nobody' in project elsewhere: nothing to forget\n"
    )

    exported = runner.invoke(
        app, ["export", "runs", "--output", str(tmp_path / "out"), "-d", database_url]
    )
    assert exported.exit_code == 0, exported.output
    written = "".join(p.read_text() for p in (tmp_path / "out").iterdir())
    assert BOB_TEXT in written
    assert ALICE_TEXT not in written


def test_forget_help_teaches() -> None:
    result = runner.invoke(app, ["users", "forget", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in (
        "Forget a user: remove everything they wrote and everything made from it.",
        "tombstones",
        "tuneback db rebuild",
        "cannot be undone",
        "followers that already read the events keep their copies",
        "tuneback users forget alice --project shop",
        "--yes",
        "--project",
    ):
        assert phrase in text, phrase
    listing = runner.invoke(app, ["users", "--help"])
    assert listing.exit_code == 0
    assert "forget" in listing.output
