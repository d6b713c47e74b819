"""A server process keeps what start-up built out of the collector's full passes; an app built
inside someone else's process (tests, notebooks, ``launch()``) leaves the collector alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import asyncio, gc, sys
from tuneback.config import Settings
from tuneback.models import EchoModel
from tuneback.server import create_app

app = create_app(
    Settings(database_url=sys.argv[1]), models=[EchoModel()], own_process=sys.argv[2] == "own"
)

async def started() -> int:
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count()

print(gc.get_freeze_count(), asyncio.run(started()))
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
    before, after = (int(n) for n in done.stdout.split())

    assert before == 0
    if process == "own":
        assert after > 50_000, "routes, validators and tables are frozen once started"
    else:
        assert after == 0
