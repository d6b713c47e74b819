from tests.api.conftest import Api, run_body


async def test_conversations_and_messages(api: Api) -> None:
    conv = await api.keyed.post(
        "/api/v1/conversations", json={"id": "c1", "user": "ann", "title": "Sums"}
    )
    assert conv.status_code == 201
    q = await api.keyed.post(
        "/api/v1/conversations/c1/messages", json={"id": "m1", "role": "user", "content": "2+2?"}
    )
    a = await api.keyed.post(
        "/api/v1/conversations/c1/messages",
        json={"id": "m2", "role": "assistant", "content": "4", "parent_id": "m1"},
    )
    assert (q.status_code, a.status_code) == (201, 201)
    messages = (await api.keyed.get("/api/v1/conversations/c1/messages")).json()
    assert [(m["id"], m["parent_id"]) for m in messages["data"]] == [("m1", None), ("m2", "m1")]
    listed = (await api.keyed.get("/api/v1/conversations", params={"user": "ann"})).json()
    assert [c["id"] for c in listed["data"]] == ["c1"]
    ended = await api.keyed.post("/api/v1/conversations/c1/end")
    assert ended.json()["ended_at"] is not None


async def test_comparisons(api: Api) -> None:
    for run_id in ("a", "b"):
        await api.keyed.post("/api/v1/runs", json=run_body(id=run_id))
    made = await api.keyed.post(
        "/api/v1/comparisons",
        json={
            "id": "cmp",
            "candidates": [{"run_id": "a"}, {"run_id": "b"}],
            "outcome": "tie",
            "user": "ann",
        },
    )
    assert made.status_code == 201
    assert (await api.keyed.get("/api/v1/comparisons/cmp")).json()["outcome"] == "tie"
    by_run = (await api.keyed.get("/api/v1/comparisons", params={"run_id": "b"})).json()
    assert [c["id"] for c in by_run["data"]] == ["cmp"]
    missing = await api.keyed.post(
        "/api/v1/comparisons",
        json={"candidates": [{"run_id": "a"}, {"run_id": "zz"}], "outcome": "a"},
    )
    assert missing.status_code == 404


async def test_events_after_an_offset(api: Api) -> None:
    for n in range(3):
        await api.keyed.post("/api/v1/runs", json=run_body(id=f"r{n}"))
    # Event 1 is the audit of the fixture's key.
    page = (await api.keyed.get("/api/v1/events", params={"after": 2})).json()
    assert [(e["seq"], e["type"], e["payload"]["run"]["id"]) for e in page["data"]] == [
        (3, "run.completed", "r1"),
        (4, "run.completed", "r2"),
    ]
    assert page["last_seq"] == 4
    empty = (await api.keyed.get("/api/v1/events", params={"after": 4})).json()
    assert empty == {"data": [], "count": 0, "last_seq": 4}


async def test_keys_over_the_api(api: Api) -> None:
    made = await api.keyed.post("/api/v1/keys", json={"name": "second"})
    assert made.status_code == 201
    key = made.json()["key"]
    listed = (await api.keyed.get("/api/v1/keys")).json()
    assert [k["name"] for k in listed["data"]] == ["tests", "second"]
    assert "key" not in listed["data"][0]
    revoked = await api.keyed.delete(f"/api/v1/keys/{made.json()['id']}")
    assert revoked.json()["revoked_at"] is not None
    refused = await api.anonymous.get("/api/v1/runs", headers={"X-API-Key": key})
    assert refused.status_code == 401
