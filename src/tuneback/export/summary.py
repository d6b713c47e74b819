"""What an export did: rows written per file, rows skipped by reason, and how long it took."""

from __future__ import annotations

from collections import Counter

from pydantic import Field

from tuneback.domain.common import DomainModel


class WrittenFile(DomainModel):
    split: str
    path: str
    rows: int


class ExportSummary(DomainModel):
    """Returned by :func:`tuneback.export.export_dataset`; the CLI prints it."""

    format: str
    writer: str
    records_read: int
    rows_written: int
    rows_skipped: int
    skipped: dict[str, int] = Field(
        description="Why rows were not written: reason → count, most frequent first."
    )
    files: list[WrittenFile]
    seconds: float

    def lines(self) -> list[str]:
        """The summary as the CLI prints it (no colour, stable order)."""
        lines = [
            f"{self.format} → {self.writer}: {self.rows_written} rows written, "
            f"{self.rows_skipped} skipped, from {self.records_read} records "
            f"in {self.seconds:.1f} s"
        ]
        lines += [f"  {file.split:<5}  {file.rows:>9}  {file.path}" for file in self.files]
        if self.skipped:
            lines.append("skipped:")
            lines += [f"  {count:>9}  {reason}" for reason, count in self.skipped.items()]
        return lines


def ordered_reasons(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
