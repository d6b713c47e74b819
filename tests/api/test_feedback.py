from tests.api.conftest import Api, run_body


async def _run(api: Api, run_id: str = "r1") -> str:
    response = await api.keyed.post("/api/v1/runs", json=run_body(id=run_id))
    assert response.status_code == 201
    return run_id


async def test_feedback_is_scored_by_the_domain_rules(api: Api) -> None:
    run_id = await _run(api)
    response = await api.keyed.post(
        "/api/v1/feedback",
        json={
            "run_id": run_id,
            "key": "stars",
            "value": 4,
            "user": "ann",
            "comment": "ok",
            "metadata": {"screen": "chat"},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert {
        k: body[k] for k in ("key", "score", "value", "kind", "source", "metadata", "current")
    } == {
        "key": "stars",
        "score": 0.75,
        "value": 4,
        "kind": "explicit",
        "source": "api",
        "metadata": {"screen": "chat"},
        "current": True,
    }
    assert api.store.get_feedback(body["id"]).score == 0.75


async def test_a_config_refuses_what_breaks_it_and_names_the_rule(api: Api) -> None:
    run_id = await _run(api)
    put = await api.keyed.put(
        "/api/v1/feedback-configs/tone",
        json={
            "config": {
                "type": "categorical",
                "categories": [{"label": "warm", "score": 1}, {"label": "cold", "score": 0}],
            }
        },
    )
    assert put.status_code == 200
    listed = await api.keyed.get("/api/v1/feedback-configs")
    assert [c["key"] for c in listed.json()["data"]] == ["tone"]
    refused = await api.keyed.post(
        "/api/v1/feedback", json={"run_id": run_id, "key": "tone", "value": "hot"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == "tone takes one of: warm, cold; got 'hot'"
    ok = await api.keyed.post(
        "/api/v1/feedback", json={"run_id": run_id, "key": "tone", "value": "warm"}
    )
    assert ok.json()["score"] == 1.0


async def test_list_retract_and_history(api: Api) -> None:
    run_id = await _run(api)
    first = (
        await api.keyed.post(
            "/api/v1/feedback",
            json={"run_id": run_id, "key": "thumbs", "value": "up", "user": "ann"},
        )
    ).json()
    second = (
        await api.keyed.post(
            "/api/v1/feedback",
            json={"run_id": run_id, "key": "thumbs", "value": "down", "user": "ann"},
        )
    ).json()
    current = (await api.keyed.get("/api/v1/feedback", params={"run_id": run_id})).json()
    assert [f["id"] for f in current["data"]] == [second["id"]]
    history = (
        await api.keyed.get("/api/v1/feedback", params={"run_id": run_id, "history": True})
    ).json()
    assert [(f["id"], f["current"]) for f in history["data"]] == [
        (second["id"], True),
        (first["id"], False),
    ]
    retracted = await api.keyed.delete(f"/api/v1/feedback/{second['id']}")
    assert retracted.status_code == 200
    assert retracted.json()["current"] is False
    assert (await api.keyed.get("/api/v1/feedback", params={"run_id": run_id})).json()["count"] == 0


async def test_resending_feedback_with_its_id_changes_nothing(api: Api) -> None:
    run_id = await _run(api)
    body = {"id": "fb-1", "run_id": run_id, "key": "thumbs", "value": "up", "user": "ann"}
    first = await api.keyed.post("/api/v1/feedback", json=body)
    again = await api.keyed.post("/api/v1/feedback", json=body)
    assert again.json() == first.json()
    assert len(api.store.events_after(0, types=["feedback.recorded"])) == 1


async def test_a_batch_reports_each_item(api: Api) -> None:
    run_id = await _run(api)
    response = await api.keyed.post(
        "/api/v1/feedback/batch",
        json={
            "feedback": [
                {"id": "ok", "run_id": run_id, "key": "thumbs", "value": "up"},
                {"id": "bad", "run_id": run_id, "key": "stars", "value": 9},
                {"id": "lost", "run_id": "nope", "key": "thumbs", "value": "up"},
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [(s["id"], s["status"]) for s in body["successes"]] == [("ok", 201)]
    assert [(e["id"], e["status"], e["error"]["type"]) for e in body["errors"]] == [
        ("bad", 422, "validation_error"),
        ("lost", 404, "not_found"),
    ]
