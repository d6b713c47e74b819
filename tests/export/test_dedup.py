"""Deduplication in fixed memory answers exactly what a set of every fingerprint would."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tuneback.export.dedup import BUFFERED, FINGERPRINT, SeenRows, fingerprint


def reference(batches: list[list[bytes]]) -> list[list[bool]]:
    seen: set[bytes] = set()
    answers = []
    for batch in batches:
        answer = []
        for item in batch:
            answer.append(item not in seen)
            seen.add(item)
        answers.append(answer)
    return answers


def random_batches(rng: random.Random, prints: list[bytes], batches: int) -> list[list[bytes]]:
    return [rng.choices(prints, k=rng.randint(0, 300)) for _ in range(batches)]


@pytest.mark.parametrize("filter_bits", [64, 1 << 20])
def test_answers_match_a_set_of_every_fingerprint(tmp_path: Path, filter_bits: int) -> None:
    rng = random.Random(7)
    # Half of the fingerprints share one bucket, so that bucket spills to the file
    # and moves to a bigger region several times; a 64-bit filter says "maybe" to
    # almost everything, so the exact check on disk decides.
    one_bucket = [rng.randbytes(FINGERPRINT - 2) + b"\0\0" for _ in range(20 * BUFFERED)]
    spread = [fingerprint(rng.randbytes(20)) for _ in range(20 * BUFFERED)]
    batches = random_batches(rng, one_bucket + spread, 60)
    with SeenRows(str(tmp_path), filter_bits=filter_bits) as seen:
        answers = [seen.first_sightings(batch) for batch in batches]
    assert answers == reference(batches)
    assert sum(map(sum, answers)) > 10 * BUFFERED
    assert list(tmp_path.iterdir()) == []


def test_a_repeat_inside_one_batch_is_caught() -> None:
    a, b = fingerprint(b"a"), fingerprint(b"b")
    with SeenRows() as seen:
        assert seen.first_sightings([a, b, a, a]) == [True, True, False, False]
        assert seen.first_sightings([b, fingerprint(b"c"), a]) == [False, True, False]
        assert seen.first_sightings([]) == []


def test_the_filter_size_is_checked() -> None:
    with pytest.raises(ValueError, match="power of two"):
        SeenRows(filter_bits=1000)
