"""The committed ``openapi.json`` is the API's contract, and the app keeps it without a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.api.conftest import make_app
from tuneback.server.api.openapi import document
from tuneback.services.keys import KeyService
from tuneback.storage import Store

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"
EXAMPLES_PER_OPERATION = 12


def test_the_committed_document_is_the_apps() -> None:
    assert json.loads(COMMITTED.read_text()) == document(), (
        "the API changed: if that was deliberate, run "
        "`python -m tuneback.server.api.openapi > openapi.json` and commit it"
    )


def test_no_request_the_document_allows_makes_a_server_error(store: Store) -> None:
    app = make_app(store)
    key = KeyService(store).create("demo").key
    schema = schemathesis.openapi.from_path(COMMITTED)
    failures: list[str] = []
    seen: list[int] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(
                app=app, headers={"Authorization": f"Bearer {key}", "Host": "tuneback.test"}
            )
            seen.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: "
                    f"{response.status_code} {response.text[:300]}"
                )

        check()
    assert operations >= 25
    assert failures == []
    # Answers came from the operations themselves, not from the host check in front.
    assert seen.count(400) < len(seen) // 2
    assert len(seen) > operations * 2
