"""Schemathesis with every check, as CI runs it: ``st run --checks all`` with an API key.

The committed ``openapi.json`` is thrown at a real server on loopback, on each
database: the examples, coverage, fuzzing and stateful phases, so every check
schemathesis has (status codes, content types, response schemas, headers,
valid data accepted and invalid data refused, ``Allow`` on 405, auth enforced,
resources still there after they are made) looks at the API's answers.
``schemathesis.toml`` next to this file says which answers the schema cannot
state by itself, and why.

To run the same thing against a server of your own::

    st --config-file tests/api/schemathesis.toml run openapi.json \\
        --checks all --url http://127.0.0.1:8000 -H "Authorization: Bearer $KEY"
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.conftest import make_app
from tests.client.servers import serving
from tuneback.services.keys import KeyService
from tuneback.storage import Store

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi.json"
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 5
SEED = 20261202
REPORT_TAIL = 20_000


@dataclass
class Target:
    url: str
    key: str


@pytest.fixture
def target(store: Store) -> Iterator[Target]:
    """The app on the test's database, served by uvicorn on a free loopback port."""
    key = KeyService(store).create("demo", name="schemathesis").key
    with serving(make_app(store)) as server:
        yield Target(server.url, key)


@pytest.mark.slow
def test_every_schemathesis_check_passes_on_every_operation(target: Target) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        str(COMMITTED),
        "--checks",
        "all",
        "--url",
        target.url,
        "--header",
        f"Authorization: Bearer {target.key}",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "1",
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-REPORT_TAIL:]
    # Every operation of the document was tested.
    counts = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", report)
    assert counts is not None, report[-REPORT_TAIL:]
    selected, total, tested = map(int, counts.groups())
    assert selected == total == tested >= 29, report[-REPORT_TAIL:]
