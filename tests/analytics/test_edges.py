"""A window's ragged edge whose hour holds no other run is read as that whole hour."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from tests.analytics.seed import START, seed
from tests.storage.test_rollups import _answers, _same
from tuneback.storage import Store
from tuneback.storage.analytics import Window
from tuneback.storage.criteria import run_conditions
from tuneback.storage.rollup_windows import WindowRollups

# The seeded runs come every 7 minutes from START: 00:00, 00:07, … 69:53.
LAST = START + timedelta(minutes=7 * 599)


def _pieces(store: Store, window: Window) -> list[str]:
    with store.engine.connect() as conn:
        rollups = WindowRollups(
            conn,
            project=window.project,
            since=window.since,
            until=window.until,
            model=window.model,
            runs_between=lambda lo, hi: run_conditions(
                dataclasses.replace(window, since=lo, until=hi).criteria()
            ),
        )
        return [kind for kind, _, _ in rollups.pieces]


def test_edges_alone_in_their_hour_answer_as_the_runs_do(store: Store) -> None:
    seed(store)
    alone = START + timedelta(hours=20, minutes=3)  # 19:57 before, 20:04 after
    shared = START + timedelta(hours=20, minutes=5)  # 20:04 is outside
    end = LAST + timedelta(minutes=1)
    windows = [
        Window("seeded", until=end),
        Window("seeded", since=alone, until=end),
        Window("seeded", since=shared, until=end),
        Window("seeded", until=LAST - timedelta(minutes=2)),  # 69:53 is outside
        Window("seeded", since=alone, until=alone + timedelta(minutes=30)),
        Window("seeded", since=alone, until=end, model="beta"),
    ]
    for window in windows:
        _same(
            _answers(store, window, from_rollups=True),
            _answers(store, window, from_rollups=False),
            repr(window),
        )
    assert _pieces(store, Window("seeded", until=end))[-1] == "h"
    assert _pieces(store, Window("seeded", since=alone, until=end))[0] == "h"
    assert _pieces(store, Window("seeded", since=shared, until=end))[0] == "raw"
    assert _pieces(store, Window("seeded", until=LAST - timedelta(minutes=2)))[-1] == "raw"
