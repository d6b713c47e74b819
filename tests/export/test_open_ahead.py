"""Sources are opened ahead: the next one's query runs while the one before it is written,
and whatever is open when an export stops is closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneback.export import export_dataset
from tuneback.export.exporter import _OpenedAhead
from tuneback.export.rows import Records, Row, Source
from tuneback.storage import Store


class Journal:
    """What the sources did, in order, from whichever thread did it."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self._lock = threading.Lock()

    def add(self, entry: str) -> None:
        with self._lock:
            self.entries.append(entry)


def source(name: str, journal: Journal, rows: int = 2, *, fails: bool = False) -> Source:
    def records() -> Iterator[Records]:
        journal.add(f"open {name}")
        try:
            if fails:
                raise RuntimeError(f"{name} cannot be read")
            for index in range(rows):
                yield 1, [Row({"text": f"{name}{index}"}, f"{name}{index}")]
        finally:
            journal.add(f"close {name}")

    return Source(name, lambda: rows, records)


def test_the_next_source_opens_before_the_current_one_is_written() -> None:
    journal = Journal()
    opened = _OpenedAhead([source("a", journal), source("b", journal)], counted=True)
    read: list[str] = []
    for current in opened:
        assert current.total == 2
        for _, outcomes in current.records():
            for outcome in outcomes:
                assert isinstance(outcome, Row)
                read.append(outcome.data["text"])
                journal.add(f"write {outcome.data['text']}")
    opened.close()
    assert read == ["a0", "a1", "b0", "b1"]
    entries = journal.entries
    # b's query ran before a's last row was written, and each source was closed once.
    assert entries.index("open b") < entries.index("write a1")
    assert entries.count("close a") == entries.count("close b") == 1


def test_a_source_that_cannot_be_read_fails_in_its_turn_and_nothing_stays_open() -> None:
    journal = Journal()
    sources = [source("a", journal), source("b", journal, fails=True), source("c", journal)]
    opened = _OpenedAhead(sources, counted=False)
    written: list[str] = []

    def write_all() -> None:
        for current in opened:
            for _, outcomes in current.records():
                written.extend(row.data["text"] for row in outcomes if isinstance(row, Row))

    with pytest.raises(RuntimeError, match="b cannot be read"):
        write_all()
    opened.close()
    assert written == ["a0", "a1"]  # a was written whole before b's failure was raised
    for name in "ab":
        assert journal.entries.count(f"open {name}") == journal.entries.count(f"close {name}")


def test_stopping_early_closes_the_current_source_and_the_one_opened_after_it() -> None:
    journal = Journal()
    opened = _OpenedAhead([source("a", journal, rows=5), source("b", journal)], counted=False)
    for current in opened:
        for _ in current.records():
            break
        break
    opened.close()
    assert sorted(entry for entry in journal.entries if entry.startswith("close")) == [
        "close a",
        "close b",
    ]


def test_an_export_reads_its_sources_from_other_threads_on_both_databases(
    seeded: Store, tmp_path: Path
) -> None:
    """The store's connections can be opened in a helper thread and read in this one."""
    first = export_dataset(seeded, format="dpo", output=tmp_path / "one")
    again = export_dataset(seeded, format="dpo", output=tmp_path / "two")
    assert first.rows_written == again.rows_written > 0
    assert (tmp_path / "one" / "dpo.jsonl").read_bytes() == (
        tmp_path / "two" / "dpo.jsonl"
    ).read_bytes()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("tuneback-export")]
