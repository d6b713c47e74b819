"""A server process keeps the garbage collector off the request path (start-up objects frozen, the
youngest generation collected less often); an app built inside someone else's process (tests,
notebooks, ``launch()``) leaves the collector alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuneback.server.app import YOUNG_COLLECTION_THRESHOLD

PROBE = """
import asyncio, gc, sys
from tuneback.config import Settings
from tuneback.models import EchoModel
from tuneback.server import create_app

app = create_app(
    Settings(database_url=sys.argv[1]), models=[EchoModel()], own_process=sys.argv[2] == "own"
)

async def started() -> tuple[int, int]:
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count(), gc.get_threshold()[0]

print(gc.get_freeze_count(), gc.get_threshold()[0], *asyncio.run(started()))
"""


@pytest.mark.parametrize("process", ["own", "shared"])
def test_only_a_process_of_its_own_freezes_startup_objects(tmp_path: Path, process: str) -> None:
    url = f"sqlite:///{tmp_path / 'tuneback.db'}"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url, process],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    frozen_before, young_before, frozen, young = (int(n) for n in done.stdout.split())

    assert (frozen_before, young_before) == (0, 700), "Python's defaults until the app starts"
    if process == "own":
        assert frozen > 50_000, "routes, validators and tables are frozen once started"
        assert young == YOUNG_COLLECTION_THRESHOLD
    else:
        assert (frozen, young) == (0, 700)
