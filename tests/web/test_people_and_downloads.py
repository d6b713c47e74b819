"""Conversations and users pages (JSON twins), run trees in the run's twin, dataset downloads."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import BASE, make_app
from tests.storage.test_browse import NOW, _seed
from tests.visitors import open_pages
from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.export import FORMATS, ExportFilters, export_dataset
from tuneback.services.datasets import DatasetService
from tuneback.storage import Store

JSON = {"accept": "application/json"}


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(store, project="p"))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield await open_pages(client)


async def test_conversations_and_users_have_json_twins(
    client: httpx.AsyncClient, store: Store
) -> None:
    runs = _seed(store)
    listed = (await client.get("/conversations?format=json&model=alpha")).json()
    assert (listed["count"], listed["page"]) == (3, 1)
    assert [(r["id"], r["runs"]) for r in listed["data"]] == [
        (runs["ann-1"].conversation_id, 1),
        ("app-conv-2", 1),
        ("app-conv-1", 2),
    ]
    assert listed["data"][0]["last_at"] == runs["ann-1"].happened_at.isoformat()
    one = (await client.get("/conversations/app-conv-1", headers=JSON)).json()
    assert one["conversation"] is None  # logged by an app: no conversation row, only runs
    assert [r["run"]["id"] for r in one["runs"]] == [runs["bob-1"].id, runs["bob-2"].id]
    assert [(f["key"], f["value"]) for f in one["runs"][0]["feedback"]] == [("thumbs", "down")]
    users = (await client.get("/users?format=json")).json()
    assert [u["name"] for u in users["data"]] == ["ann", "cyd", "bob"]
    bob = (await client.get("/users/bob", headers=JSON)).json()
    assert (bob["user"]["name"], bob["user"]["runs"]) == ("bob", 2)
    assert [c["id"] for c in bob["conversations"]["data"]] == ["app-conv-1"]
    missing = await client.get("/users/nobody", headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert "This user isn&#39;t here" in missing.text or "This user isn't here" in missing.text
    bad = await client.get("/conversations?since=yesterday&format=json")
    assert bad.status_code == 200  # a bad filter is ignored and said so on the page
    page = await client.get("/conversations?since=yesterday", headers={"accept": "text/html"})
    assert "since: Input should be a valid datetime" in page.text


async def test_the_dashboard_links_its_counts_to_the_lists(
    client: httpx.AsyncClient, store: Store
) -> None:
    _seed(store)
    store.append(RunCompleted(run=Run(project="p", user="zed", conversation_id="now", inputs=[])))
    for period in ("all", "7d"):
        page = await client.get(f"/dashboard?period={period}", headers={"accept": "text/html"})
        numbers = (await client.get(f"/dashboard?period={period}&format=json")).json()
        for name in ("conversations", "users"):
            found = re.search(rf'<a class="stat" href="(/{name}\?[^"]*)"', page.text)
            assert found is not None, name
            href = html.unescape(found.group(1))
            assert ("since=" in href) == (period != "all")
            listed = (await client.get(href, headers=JSON)).json()
            assert listed["count"] == numbers["summary"][name] > 0


async def test_the_run_twin_carries_its_tree(client: httpx.AsyncClient, store: Store) -> None:
    root = Run(project="p", run_type="chain", name="root", inputs={"q": "x"}, started_at=NOW)
    leaf = Run(project="p", name="leaf", parent_run_id=root.id, inputs=[], started_at=NOW)
    store.append_many([RunCompleted(run=root), RunCompleted(run=leaf)])
    tree = (await client.get(f"/runs/{leaf.id}", headers=JSON)).json()["tree"]
    assert tree == [
        {
            "id": root.id,
            "parent_run_id": None,
            "depth": 0,
            "name": "root",
            "run_type": "chain",
            "status": "ok",
            "latency_ms": None,
        },
        {
            "id": leaf.id,
            "parent_run_id": root.id,
            "depth": 1,
            "name": "leaf",
            "run_type": "llm",
            "status": "ok",
            "latency_ms": None,
        },
    ]


def _dataset(store: Store) -> str:
    runs = [
        Run(
            project="p",
            inputs=[ChatMessage(role="user", content=f"q{n}")],
            output=f"a{n}",
            model="m",
        )
        for n in range(3)
    ]
    store.append_many([RunCompleted(run=r) for r in runs])
    datasets = DatasetService(store)
    dataset = datasets.create(project="p", name="my set!")
    datasets.add_runs(dataset.id, [r.id for r in runs])
    return dataset.id


@pytest.mark.parametrize("format", sorted(FORMATS))
async def test_a_dataset_downloads_in_every_format_as_the_exporter_writes_it(
    client: httpx.AsyncClient, store: Store, tmp_path: Path, format: str
) -> None:
    dataset_id = _dataset(store)
    response = await client.get(f"/datasets/{dataset_id}/download?format={format}")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == (
        f'attachment; filename="my-set-v1-{format}.jsonl"'
    )
    expected = export_dataset(
        store,
        format=format,
        output=tmp_path,
        filters=ExportFilters(project="p", dataset=dataset_id),
    )
    [file] = expected.files
    assert response.content == Path(file.path).read_bytes()
    assert len(response.text.splitlines()) == file.rows


async def test_csv_and_hf_downloads(client: httpx.AsyncClient, store: Store) -> None:
    dataset_id = _dataset(store)
    got = await client.get(f"/datasets/{dataset_id}/download?format=sft&writer=csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [json.loads(r["messages"])[-1]["content"] for r in rows] == ["a0", "a1", "a2"]
    hf = await client.get(f"/datasets/{dataset_id}/download?format=sft&writer=hf")
    assert hf.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(hf.content)).namelist()
    assert "sft/dataset_dict.json" in names
    wrong = await client.get(f"/datasets/{dataset_id}/download?format=nope")
    assert (wrong.status_code, wrong.json()["error"]["type"]) == (422, "validation_error")


async def test_a_removed_item_comes_back(client: httpx.AsyncClient, store: Store) -> None:
    dataset_id = _dataset(store)
    first, *rest = store.dataset_items(dataset_id)
    removed = await client.delete(f"/ui/datasets/{dataset_id}/items/{first.id}")
    assert removed.json()["version"] == 2
    back = (await client.post(f"/ui/datasets/{dataset_id}/items/{first.id}/restore")).json()
    assert (back["source_run_id"], back["version"]) == (first.source_run_id, 3)
    assert [i.source_run_id for i in store.dataset_items(dataset_id)] == [
        *(i.source_run_id for i in rest),
        first.source_run_id,
    ]
