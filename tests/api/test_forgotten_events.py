"""What API clients see of a forgotten user: tombstones in the events, 409 on a retry."""

from __future__ import annotations

from tests.api.conftest import Api, run_body

SECRET = "my-address-is-12-elm-street"


async def test_events_show_tombstones_and_a_retried_run_is_refused(api: Api) -> None:
    body = run_body(id="r-alice", user="alice", output=SECRET)
    assert (await api.keyed.post("/api/v1/runs", json=body)).status_code == 201
    kept = await api.keyed.post("/api/v1/runs", json=run_body(id="r-bob", user="bob"))
    assert kept.status_code == 201

    api.store.forget_user("alice")

    page = (await api.keyed.get("/api/v1/events")).json()
    assert SECRET not in str(page)
    # Audits of the key the fixture made may sit in the log too; the runs' events:
    first, second = [e for e in page["data"] if e["type"] != "audit.recorded"]
    assert (first["project"], first["type"]) == ("demo", "event.forgotten")
    assert first["payload"] == {
        "project": "demo",
        "was": "run.completed",
        "forgotten_at": first["payload"]["forgotten_at"],
        "dataset_id": None,
        "task_id": None,
    }
    assert (second["seq"], second["type"], second["payload"]["run"]["id"]) == (
        first["seq"] + 1,
        "run.completed",
        "r-bob",
    )
    assert (await api.keyed.get("/api/v1/runs/r-alice")).status_code == 404

    # The app that logged the run retries it (say, after a timeout): refused, not stored.
    retried = await api.keyed.post("/api/v1/runs", json=body)
    assert retried.status_code == 409
    assert retried.json()["error"]["type"] == "conflict"
    assert "was forgotten" in retried.json()["error"]["message"]
    assert (await api.keyed.get("/api/v1/runs/r-alice")).status_code == 404
    after = (await api.keyed.get("/api/v1/events")).json()
    assert after == page
