"""Anything the store acknowledges can be read back and replayed, on both databases.

Payloads of every event type are drawn at random (clean ones and ones carrying
infinities, NUL and lone surrogates); each is appended, and whatever the store
acknowledged must read back equal from the log, and the whole log must replay.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.domain.test_encode_payload import PAYLOADS
from tests.storage.snapshot import projection_snapshot
from tuneback.errors import TuneBackError
from tuneback.storage import Store

EVERY_PAYLOAD = st.one_of(*PAYLOADS.values())


@pytest.mark.slow
def test_anything_acknowledged_reads_back_and_replays(store: Store) -> None:
    acknowledged: dict[str, object] = {}

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=EVERY_PAYLOAD)
    def append(payload: object) -> None:
        try:
            stored = store.append(payload)  # type: ignore[arg-type]
        except TuneBackError:
            return  # refused, with the one error tree: nothing was stored
        acknowledged[stored.id] = payload

    append()
    assert acknowledged, "every drawn payload was refused: the strategies draw nothing storable"
    log = store.events_after(0, limit=10_000)
    read_back = {e.id: e.payload for e in log}
    for event_id, payload in acknowledged.items():
        got = read_back.get(event_id)
        assert got == payload, (payload.model_dump(), got.model_dump() if got else None)  # type: ignore[attr-defined]
    assert set(read_back) == set(acknowledged)
    before = projection_snapshot(store)
    assert store.rebuild() == len(log)
    assert projection_snapshot(store) == before
