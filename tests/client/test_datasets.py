"""add_to_dataset from the SDK, and the datasets API under it, against the real app."""

from __future__ import annotations

import httpx
import pytest

from tests.client.conftest import Sdk
from tuneback import AsyncClient, Client, NotFoundError, ValidationError
from tuneback.services.keys import KeyService


def items(sdk: Sdk, name: str) -> list[tuple[str, str, str | None, list[dict[str, str]]]]:
    """(output, source, run, inputs) of every item in the named dataset, oldest first."""
    [dataset] = [d for d in sdk.store.list_datasets("demo") if d.name == name]
    return [
        (i.output, i.source, i.source_run_id, [m.model_dump() for m in i.inputs])
        for i in sdk.store.dataset_items(dataset.id)
    ]


def test_a_run_joins_a_dataset_made_on_first_use_once(sdk: Sdk) -> None:
    with sdk.client(flush_interval=60) as client:
        kept = client.log_run(inputs="What is 2 + 2?", output="4")  # still queued
        item = client.add_to_dataset(kept, "golden")
        assert client.add_to_dataset(kept, "golden") == item
        fixed = client.log_run(inputs="What is 3 + 3?", output="7")
        client.add_to_dataset(fixed, "golden", output="6")
        client.add_to_dataset(fixed, "other")
    question = [{"role": "user", "content": "What is 2 + 2?"}]
    assert items(sdk, "golden") == [
        ("4", "run", kept, question),
        ("6", "correction", fixed, [{"role": "user", "content": "What is 3 + 3?"}]),
    ]
    # The output given is the run's correction, so every dataset and export sees it.
    assert items(sdk, "other")[0][:2] == ("6", "correction")
    [correction] = sdk.store.feedback_for_run(fixed)
    assert (correction.key, correction.kind, correction.correction) == (
        "correction",
        "correction",
        "6",
    )
    assert sorted(d.name for d in sdk.store.list_datasets("demo")) == ["golden", "other"]


def test_what_cannot_be_an_example_is_refused_at_the_call(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    with pytest.raises(ValidationError):
        client.add_to_dataset("a run", "golden")
    with pytest.raises(ValidationError):
        client.add_to_dataset("01ARZ3NDEKTSV4RRFFQ69G5FAV", "")
    with pytest.raises(NotFoundError):
        client.add_to_dataset("01ARZ3NDEKTSV4RRFFQ69G5FAV", "golden")
    templated = client.log_run(inputs={"question": "q"}, output="a")
    with pytest.raises(ValidationError, match="no chat messages as inputs"):
        client.add_to_dataset(templated, "golden")
    # Another project's run does not exist for this key.
    other_key = KeyService(sdk.store).create("elsewhere").key
    other = Client("http://tuneback.test", other_key, transport=sdk.transport, background=False)
    theirs = other.log_run(inputs="q", output="a")
    with pytest.raises(NotFoundError):
        client.add_to_dataset(theirs, "golden")
    other.close()
    client.close()


def test_the_datasets_api(sdk: Sdk) -> None:
    http = httpx.Client(
        base_url="http://tuneback.test",
        transport=sdk.transport,
        headers={"Authorization": f"Bearer {sdk.key}"},
    )
    made = http.post("/api/v1/datasets", json={"name": "golden", "description": "best"})
    assert made.status_code == 201
    dataset = made.json()
    assert {k: dataset[k] for k in ("project", "name", "description", "version", "item_count")} == {
        "project": "demo",
        "name": "golden",
        "description": "best",
        "version": 0,
        "item_count": 0,
    }
    again = http.post("/api/v1/datasets", json={"name": "golden"})
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict"
    assert http.get("/api/v1/datasets").json()["count"] == 1
    missing = http.post("/api/v1/datasets/nothing-here/items", json={"run_ids": ["r1"]})
    assert missing.status_code == 404
    empty = http.post(f"/api/v1/datasets/{dataset['id']}/items", json={"run_ids": []})
    assert empty.status_code == 422
    http.close()


async def test_the_async_client_adds_to_datasets_too(sdk: Sdk) -> None:
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", sdk.key, transport=transport) as client:
        run_id = await client.log_run(inputs="Hi", output="Hello")
        item = await client.add_to_dataset(run_id, "golden", output="Hello there!")
        assert await client.add_to_dataset(run_id, "golden") == item
    assert items(sdk, "golden") == [
        ("Hello there!", "correction", run_id, [{"role": "user", "content": "Hi"}])
    ]
