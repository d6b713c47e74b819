"""Feedback through the API: scored by the key's rules, listed, retracted, and one id per rating."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import BASE, Api, make_app, run_body
from tests.visitors import open_pages
from tuneback.domain import Run, RunCompleted
from tuneback.errors import ConflictError
from tuneback.server.api.deps import feedback_public
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store


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


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"type", "message", "details"}
    return error


async def test_one_id_names_one_rating_through_the_api_and_the_service(api: Api) -> None:
    run_id = await _run(api)
    body = {"id": "fb-7", "run_id": run_id, "key": "thumbs", "value": "up", "user": "ann"}
    first = await api.keyed.post("/api/v1/feedback", json=body)
    assert first.status_code == 201, first.text
    again = await api.keyed.post("/api/v1/feedback", json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    changed = await api.keyed.post("/api/v1/feedback", json={**body, "value": "down"})
    assert changed.status_code == 409
    assert _error(changed) == {
        "type": "conflict",
        "message": "id fb-7 is already used by a different feedback.recorded; "
        "use a new id for a new object (a retry must send the same content)",
        "details": {"id": "fb-7"},
    }
    service = FeedbackService(api.store)
    retried = service.record(
        run_id=run_id, key="thumbs", value="up", user="ann", source="api", feedback_id="fb-7"
    )
    assert feedback_public(retried).model_dump(mode="json") == first.json()
    with pytest.raises(ConflictError, match=r"already used by a different feedback\.recorded"):
        service.record(run_id=run_id, key="thumbs", value="down", user="ann", feedback_id="fb-7")
    with pytest.raises(ConflictError, match=r"already used by a different feedback\.recorded"):
        await service.record_async(
            run_id=run_id, key="thumbs", value="down", user="ann", feedback_id="fb-7"
        )
    [stored] = api.store.events_after(0, types=["feedback.recorded"])
    assert stored.id == "fb-7"
    assert [(f.id, f.value) for f in api.store.feedback_for_run(run_id)] == [("fb-7", "up")]


async def test_an_id_another_project_holds_is_a_conflict_that_says_nothing_of_it(
    api: Api,
) -> None:
    theirs = Run(
        id="their-run", project="secret", inputs=[{"role": "user", "content": "q"}], output="a"
    )
    api.store.append(RunCompleted(run=theirs), event_id="their-run-event")
    FeedbackService(api.store).record(
        run_id=theirs.id,
        key="thumbs",
        value="down",
        user="eve",
        comment="hidden words",
        feedback_id="shared-id",
    )
    run_id = await _run(api)
    for body in (
        {"id": "shared-id", "run_id": run_id, "key": "thumbs", "value": "down", "user": "eve"},
        {"id": "their-run-event", "run_id": run_id, "key": "thumbs", "value": "up"},
    ):
        refused = await api.keyed.post("/api/v1/feedback", json=body)
        assert refused.status_code == 409
        assert _error(refused) == {
            "type": "conflict",
            "message": f"id {body['id']} is already used by a different event; "
            "use a new id for a new object (a retry must send the same content)",
            "details": {"id": body["id"]},
        }
    batch = await api.keyed.post(
        "/api/v1/ingest",
        json={
            "items": [
                {
                    "type": "feedback",
                    "id": "shared-id",
                    "run_id": run_id,
                    "key": "thumbs",
                    "value": "up",
                }
            ]
        },
    )
    assert batch.status_code == 207
    [failed] = batch.json()["errors"]
    assert (failed["status"], failed["error"]["type"]) == (409, "conflict")
    assert "secret" not in batch.text
    assert "hidden" not in batch.text
    assert api.store.feedback_for_run(run_id) == []
    [kept] = api.store.feedback_for_run(theirs.id)
    assert (kept.id, kept.project, kept.value, kept.comment) == (
        "shared-id",
        "secret",
        "down",
        "hidden words",
    )


async def test_a_rating_refused_inside_the_write_is_a_conflict_on_the_chat_page(
    store: Store,
) -> None:
    FeedbackService(store).configure_project("default", {"changeable": False})
    app = make_app(store, model="echo")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as raw:
        browser = await open_pages(raw)
        streamed = await browser.post("/ui/chat", json={"content": "Rate me once"})
        assert streamed.status_code == 200, streamed.text
        start = streamed.text.split("event: start\ndata: ", 1)[1].split("\n", 1)[0]
        run_id = json.loads(start)["run_id"]
        rating = f"/ui/runs/{run_id}/feedback"
        first = await browser.post(rating, json={"key": "thumbs", "value": "up"})
        assert first.status_code == 200, first.text
        second = await browser.post(rating, json={"key": "thumbs", "value": "down"})
    assert second.status_code == 409
    assert _error(second) == {
        "type": "conflict",
        "message": "you already rated this answer (thumbs) and ratings are locked in this project",
        "details": {"key": "thumbs"},
    }
    assert [f.value for f in store.feedback_for_run(run_id, history=True)] == ["up"]


async def test_feedback_on_a_conversation_keeps_the_same_id_rule(api: Api) -> None:
    started = await api.keyed.post("/api/v1/conversations", json={"user": "ann"})
    assert started.status_code == 201, started.text
    rate = f"/api/v1/conversations/{started.json()['id']}/feedback"
    body = {"id": "conv-fb", "key": "stars", "value": 4, "user": "ann"}
    first = await api.keyed.post(rate, json=body)
    assert first.status_code == 201, first.text
    again = await api.keyed.post(rate, json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    changed = await api.keyed.post(rate, json={**body, "value": 2})
    assert changed.status_code == 409
    assert _error(changed)["type"] == "conflict"
    assert [e.id for e in api.store.events_after(0, types=["feedback.recorded"])] == ["conv-fb"]
