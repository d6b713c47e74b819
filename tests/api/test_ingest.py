import httpx

from tests.api.conftest import BASE, Api, make_app, run_body


def _batch() -> list[dict[str, object]]:
    return [
        {"type": "run", **run_body(id="r1")},
        {"type": "run", **run_body(id="r2", model="other")},
        {"type": "feedback", "id": "f1", "run_id": "r1", "key": "thumbs", "value": "up"},
        {
            "type": "comparison",
            "id": "c1",
            "candidates": [{"run_id": "r1"}, {"run_id": "r2"}],
            "outcome": "a",
        },
    ]


async def test_a_valid_batch_is_stored_whole(api: Api) -> None:
    response = await api.keyed.post("/api/v1/ingest", json={"items": _batch()})
    assert response.status_code == 200
    assert response.json() == {
        "successes": [
            {"index": 0, "type": "run", "id": "r1", "status": 201, "error": None},
            {"index": 1, "type": "run", "id": "r2", "status": 201, "error": None},
            {"index": 2, "type": "feedback", "id": "f1", "status": 201, "error": None},
            {"index": 3, "type": "comparison", "id": "c1", "status": 201, "error": None},
        ],
        "errors": [],
    }
    assert [e.type for e in api.store.events_after(0)] == [
        "audit.recorded",  # the fixture's key
        "run.completed",
        "run.completed",
        "feedback.recorded",
        "comparison.recorded",
    ]
    assert api.store.get_comparison("c1").winner.run_id == "r1"  # type: ignore[union-attr]


async def test_resending_a_batch_stores_nothing_twice(api: Api) -> None:
    first = await api.keyed.post("/api/v1/ingest", json={"items": _batch()})
    again = await api.keyed.post("/api/v1/ingest", json={"items": _batch()})
    assert again.json() == first.json()
    assert api.store.last_seq() == 5  # the fixture's key, then the batch


async def test_bad_items_fail_alone_with_207(api: Api) -> None:
    items = [
        {"type": "run", **run_body(id="good")},
        {"type": "run", **run_body(id="typo", outptu="x")},
        {"type": "feedback", "id": "f", "run_id": "good", "key": "stars", "value": 7},
        {"type": "mystery"},
        {
            "type": "comparison",
            "id": "c",
            "candidates": [{"run_id": "good"}, {"run_id": "gone"}],
            "outcome": "b",
        },
    ]
    response = await api.keyed.post("/api/v1/ingest", json={"items": items})
    assert response.status_code == 207
    body = response.json()
    assert [(s["index"], s["id"]) for s in body["successes"]] == [(0, "good")]
    assert [(e["index"], e["id"], e["status"]) for e in body["errors"]] == [
        (1, "typo", 422),
        (2, "f", 422),
        (3, None, 422),
        (4, "c", 404),
    ]
    assert (
        body["errors"][0]["error"]["message"]
        == "items.1.run.outptu: Extra inputs are not permitted"
    )
    events = api.store.events_after(0)
    assert [(e.type, e.id) for e in events[1:]] == [("run.completed", "good")]
    assert events[0].type == "audit.recorded"  # the fixture's key


async def test_bodies_over_the_limit_get_413(store) -> None:  # type: ignore[no-untyped-def]
    app = make_app(store, auth=False, max_body_bytes=2048)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        items = [{"type": "run", **run_body(output="x" * 4000)}]
        response = await client.post("/api/v1/ingest", json={"items": items})
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "payload_too_large"

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * 512

        streamed = await client.post(
            "/api/v1/ingest", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"]["type"] == "payload_too_large"
