"""Which rows were already written: exact deduplication in a fixed amount of memory.

Every written row leaves a 16-byte fingerprint (BLAKE2b of its JSON). Keeping
them in a Python set costs about 100 bytes a row, so a big export would grow
with its size; here they are kept in two places instead:

* a Bloom filter of fixed size (16 MiB of bits, four probes) answers "never
  seen" for almost every new row, checked for a whole batch at once with numpy;
* the fingerprints themselves live in a temporary file, split into buckets by
  their last two bytes. Each bucket is one contiguous region of the file, moved to
  a region twice as big when it fills, so checking a fingerprint is one read of
  its bucket. Only a row the filter cannot rule out (a real duplicate, or about
  one row in a million at a million rows) is checked there.

A batch's new fingerprints are sorted by bucket and copied into the buffers
with numpy as well, so the per-row work in Python is hashing the line.

Memory is the filter plus a 1 KiB buffer per bucket (allocated up front): at
most 20 MiB, whatever the row count; the file holds at most 64 bytes a row and is deleted
when the export ends.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from types import TracebackType

import numpy as np

FINGERPRINT = 16
"""Bytes of BLAKE2b kept per row: a collision is about as likely as a cosmic-ray bit flip."""

FILTER_BITS = 1 << 27
"""16 MiB: a false positive is about one in a million rows at a million, 1 in 200 at ten million."""

PROBES = 4

BUCKETS = 4096

BUFFERED = 64
"""Fingerprints held in memory per bucket before they go to the file (4096 × 1 KiB)."""


def fingerprint(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=FINGERPRINT).digest()


class SeenRows:
    """A set of fingerprints that answers a batch at a time: which of these are new?"""

    def __init__(self, directory: str | None = None, *, filter_bits: int = FILTER_BITS) -> None:
        if filter_bits < 8 or filter_bits & (filter_bits - 1):
            raise ValueError(f"filter_bits must be a power of two of at least 8, not {filter_bits}")
        self._filter_bits = np.uint64(filter_bits)
        self._bits = np.zeros(filter_bits // 8, dtype=np.uint8)
        # Every bucket's buffer is allocated up front, so memory is the same from the first row.
        self._buffers = np.zeros((BUCKETS, BUFFERED, FINGERPRINT), dtype=np.uint8)
        self._filled = np.zeros(BUCKETS, dtype=np.intp)
        # Each bucket's region in the file: offset, bytes used, bytes reserved.
        self._regions = np.zeros((BUCKETS, 3), dtype=np.int64)
        self._end = 0
        # Lives as long as this object; close() (or leaving its with block) deletes it.
        self._file = tempfile.TemporaryFile(dir=directory, prefix="tuneback-seen-")  # noqa: SIM115
        self._fd = self._file.fileno()

    def __enter__(self) -> SeenRows:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def first_sightings(self, fingerprints: Sequence[bytes]) -> list[bool]:
        """For each fingerprint, in order: True the first time it is seen; then remembers it."""
        if not fingerprints:
            return []
        joined = b"".join(fingerprints)
        words = np.frombuffer(joined, dtype="<u8").reshape(-1, 2)
        probes = np.arange(PROBES, dtype=np.uint64)
        # Double hashing: probe k is (a + k·b) mod m, from the two halves of the fingerprint.
        positions = (words[:, :1] + probes * words[:, 1:]) % self._filter_bits
        cells = (positions >> np.uint64(3)).astype(np.intp)
        masks = np.left_shift(1, positions & np.uint64(7)).astype(np.uint8)
        maybe = ((self._bits[cells] & masks) != 0).all(axis=1)
        new = np.ones(len(fingerprints), dtype=bool)
        if len(set(fingerprints)) < len(fingerprints):
            # A repeat inside the batch is not new (rare: most batches skip this loop).
            in_batch: set[bytes] = set()
            for index, print_ in enumerate(fingerprints):
                new[index] = print_ not in in_batch
                in_batch.add(print_)
        # Only what the filter cannot rule out is looked up where it is stored.
        for index in np.flatnonzero(new & maybe).tolist():
            if self._stored(fingerprints[index]):
                new[index] = False
        self._store(np.frombuffer(joined, dtype=np.uint8).reshape(-1, FINGERPRINT)[new])
        cells, masks = cells[new].ravel(), masks[new].ravel()
        self._bits[cells] |= masks
        # Two probes into one byte in the same batch: the assignment kept only one of them.
        for index in np.flatnonzero(self._bits[cells] & masks != masks).tolist():
            self._bits[cells[index]] |= masks[index]
        return new.tolist()

    def _bucket(self, print_: bytes) -> int:
        return int.from_bytes(print_[-2:], "little") % BUCKETS

    def _store(self, prints: np.ndarray) -> None:
        """Adds fingerprints (rows of ``prints``) to their buckets' buffers, spilling full ones."""
        buckets = (prints[:, -2] | prints[:, -1].astype(np.uint16) << 8) % BUCKETS
        order = np.argsort(buckets, kind="stable")  # a radix sort, for 16-bit keys
        buckets = buckets.astype(np.intp)
        prints, buckets = prints[order], buckets[order]
        while len(buckets):
            # Each fingerprint's place after those before it in the same bucket.
            starts = np.flatnonzero(np.diff(buckets, prepend=-1))
            rank = np.arange(len(buckets)) - np.repeat(starts, np.diff(starts, append=len(buckets)))
            slots = self._filled[buckets] + rank
            fits = slots < BUFFERED
            self._buffers[buckets[fits], slots[fits]] = prints[fits]
            self._filled += np.bincount(buckets[fits], minlength=BUCKETS)
            for bucket in np.flatnonzero(self._filled == BUFFERED).tolist():
                self._spill(bucket, self._buffers[bucket].tobytes())
                self._filled[bucket] = 0
            prints, buckets = prints[~fits], buckets[~fits]

    def _spill(self, bucket: int, buffer: bytes) -> None:
        offset, used, reserved = (int(value) for value in self._regions[bucket])
        if used + len(buffer) > reserved:
            # Move the bucket to a region twice the size at the end of the file:
            # the copying adds up to a constant factor of what is written.
            reserved = max(2 * reserved, 4 * len(buffer))
            old = os.pread(self._fd, used, offset) if used else b""
            offset, self._end = self._end, self._end + reserved
            os.pwrite(self._fd, old, offset)
        os.pwrite(self._fd, buffer, offset + used)
        self._regions[bucket] = (offset, used + len(buffer), reserved)

    def _stored(self, print_: bytes) -> bool:
        bucket = self._bucket(print_)
        if _holds(self._buffers[bucket, : self._filled[bucket]].tobytes(), print_):
            return True
        offset, used, _ = (int(value) for value in self._regions[bucket])
        return bool(used) and _holds(os.pread(self._fd, used, offset), print_)


def _holds(block: bytes, print_: bytes) -> bool:
    at = block.find(print_)
    while at != -1:
        if at % FINGERPRINT == 0:
            return True
        at = block.find(print_, at + 1)
    return False
