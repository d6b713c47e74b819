from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.export.seed import seed
from tuneback.storage import Store


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    return store


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]
