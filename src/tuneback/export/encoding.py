"""How a row becomes what is written: the split it lands in, and its JSON line.

The train/test split hashes each row's prompt (flat tables: its id), so it is
the same on every run and every answer to one prompt lands in the same split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tuneback.domain.json_encoding import json_bytes
from tuneback.export.rows import Row

SPLIT_BUCKETS = 1 << 32


class EncodedRow(NamedTuple):
    """A row ready for the files: its split, its JSON (if anything needs it) and its data.

    ``data`` is ``None`` when nothing but the line is written (every writer takes
    lines); the second process of a split export leaves it out of its spool.
    """

    split: str
    line: bytes | None
    data: Mapping[str, Any] | None


@dataclass(frozen=True)
class RowEncoding:
    """What one export needs of each row: the test split's share, the line, the data."""

    test_buckets: int = 0
    """Rows whose prompt hashes below this go to the test split (0: no test split)."""
    encode: bool = True
    """Whether rows are encoded as JSON lines (to deduplicate them, or for a writer)."""
    keep_data: bool = False
    """Whether a writer needs each row's data, not only its line."""

    @classmethod
    def of(cls, split: float, *, encode: bool, keep_data: bool) -> RowEncoding:
        return cls(int(split * SPLIT_BUCKETS), encode, keep_data)

    def encoded(self, row: Row) -> EncodedRow:
        """The row with its split and line; its data only where a writer needs it."""
        split = split_of(row, self.test_buckets) if self.test_buckets else "train"
        line = json_bytes(row.data) if self.encode else None
        return EncodedRow(split, line, row.data if self.keep_data or line is None else None)


def split_of(row: Row, test_buckets: int) -> str:
    # blake2b rather than crc32: similar prompts must still spread evenly.
    key = row.prompt
    text = key.encode() if isinstance(key, str) else json_bytes(key)
    bucket = int.from_bytes(hashlib.blake2b(text, digest_size=4).digest())
    return "test" if bucket < test_buckets else "train"
