from datetime import UTC, datetime, timedelta

from tests.api.conftest import Api, run_body


async def test_a_logged_run_reads_back_whole(api: Api) -> None:
    created = await api.keyed.post("/api/v1/runs", json=run_body(id="run-1"))
    assert created.status_code == 201
    body = created.json()
    assert body["id"] == "run-1"
    assert body["project"] == "demo"
    fetched = await api.keyed.get("/api/v1/runs/run-1")
    assert fetched.json() == body
    assert api.store.get_run("run-1").output == "4"


async def test_resending_a_run_id_is_a_no_op(api: Api) -> None:
    first = await api.keyed.post("/api/v1/runs", json=run_body(id="same"))
    again = await api.keyed.post("/api/v1/runs", json=run_body(id="same"))
    assert again.status_code == 201
    assert again.json() == first.json()
    assert [e.type for e in api.store.events_after(0)] == ["audit.recorded", "run.completed"]


async def test_reusing_a_run_id_for_a_different_run_is_a_conflict(api: Api) -> None:
    first = await api.keyed.post("/api/v1/runs", json=run_body(id="same"))
    clash = await api.keyed.post("/api/v1/runs", json=run_body(id="same", output="changed"))
    assert clash.status_code == 409
    assert clash.json()["error"]["type"] == "conflict"
    assert api.store.get_run("same").output == first.json()["output"]


async def test_an_id_used_by_other_data_is_a_conflict(api: Api) -> None:
    await api.keyed.post("/api/v1/runs", json=run_body(id="r"))
    feedback = {"id": "taken", "run_id": "r", "key": "thumbs", "value": "up"}
    assert (await api.keyed.post("/api/v1/feedback", json=feedback)).status_code == 201
    clash = await api.keyed.post("/api/v1/runs", json=run_body(id="taken"))
    assert clash.status_code == 409
    assert clash.json()["error"]["type"] == "conflict"


async def test_unknown_fields_are_refused_by_name(api: Api) -> None:
    response = await api.keyed.post("/api/v1/runs", json=run_body(outptu="typo"))
    assert response.status_code == 422
    assert response.json()["error"] == {
        "type": "validation_error",
        "message": "body.outptu: Extra inputs are not permitted",
        "details": [
            {
                "loc": ["body", "outptu"],
                "msg": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            }
        ],
    }


async def test_a_key_writes_only_to_its_project(api: Api) -> None:
    response = await api.keyed.post("/api/v1/runs", json=run_body(project="other"))
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "forbidden"


async def test_other_projects_runs_do_not_exist_for_a_key(api: Api) -> None:
    from tuneback.domain import Run, RunCompleted

    api.store.append(RunCompleted(run=Run(id="elsewhere", project="other", output="x")))
    response = await api.keyed.get("/api/v1/runs/elsewhere")
    assert response.status_code == 404
    listed = await api.keyed.get("/api/v1/runs")
    assert listed.json()["count"] == 0


async def test_runs_filter_by_every_criterion(api: Api) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        run_body(id="a", model="m1", user="ann", tags=["x"], created_at=t0.isoformat()),
        run_body(
            id="b",
            model="m2",
            user="bob",
            tags=["y"],
            created_at=(t0 + timedelta(hours=1)).isoformat(),
        ),
        run_body(
            id="c",
            model="m1",
            user="bob",
            tags=["x", "y"],
            created_at=(t0 + timedelta(hours=2)).isoformat(),
        ),
    ]
    for body in runs:
        assert (await api.keyed.post("/api/v1/runs", json=body)).status_code == 201
    for run_id, value in (("a", "up"), ("c", "down")):
        fb = {"run_id": run_id, "key": "thumbs", "value": value}
        assert (await api.keyed.post("/api/v1/feedback", json=fb)).status_code == 201

    async def ids(**params: object) -> list[str]:
        response = await api.keyed.get("/api/v1/runs", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["data"]]

    assert await ids() == ["c", "b", "a"]
    assert await ids(model="m1") == ["c", "a"]
    assert await ids(user="bob") == ["c", "b"]
    assert await ids(tag="x") == ["c", "a"]
    assert await ids(tag="y", model="m2") == ["b"]
    assert await ids(since=(t0 + timedelta(minutes=30)).isoformat()) == ["c", "b"]
    assert await ids(until=(t0 + timedelta(minutes=30)).isoformat()) == ["a"]
    assert await ids(has_feedback="thumbs") == ["c", "a"]
    assert await ids(min_score=0.5) == ["a"]
    assert await ids(max_score=0.5, score_key="thumbs") == ["c"]


async def test_cursor_pages_cover_every_run_once(api: Api) -> None:
    for n in range(7):
        await api.keyed.post("/api/v1/runs", json=run_body(id=f"r{n}"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.keyed.get("/api/v1/runs", params=params)).json()
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"r{n}" for n in reversed(range(7))]


async def test_a_bad_cursor_is_a_422(api: Api) -> None:
    response = await api.keyed.get("/api/v1/runs", params={"cursor": "nonsense!"})
    assert response.status_code == 422


async def test_nul_characters_are_refused_alike_on_both_databases(api: Api) -> None:
    in_body = await api.keyed.post("/api/v1/runs", json=run_body(output="a\x00b"))
    assert in_body.status_code == 422
    assert "NUL" in in_body.json()["error"]["message"]
    in_url = await api.keyed.get("/api/v1/runs/a%00b")
    assert in_url.status_code == 422
    assert in_url.json()["error"]["type"] == "validation_error"
