"""Comparisons over the API: how a battle was set up, and re-votes that supersede."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api, run_body


def _vote(cid: str, outcome: str, **extra: Any) -> dict[str, Any]:
    body = {
        "id": cid,
        "candidates": [{"run_id": "ra"}, {"run_id": "rb"}],
        "outcome": outcome,
        "user": "ann",
        "mode": "named",
    }
    return {**body, **extra}


async def _seed(api: Api) -> None:
    for run_id in ("ra", "rb", "rc"):
        made = await api.keyed.post("/api/v1/runs", json=run_body(id=run_id))
        assert made.status_code == 201


async def test_a_revote_supersedes_and_both_stay_readable(api: Api) -> None:
    await _seed(api)
    assert (await api.keyed.post("/api/v1/comparisons", json=_vote("c1", "a"))).status_code == 201
    revote = await api.keyed.post("/api/v1/comparisons", json=_vote("c2", "b", supersedes="c1"))
    assert revote.status_code == 201
    assert (revote.json()["mode"], revote.json()["supersedes"]) == ("named", "c1")

    listed = (await api.keyed.get("/api/v1/comparisons")).json()["data"]
    assert [(c["id"], c["outcome"], c["supersedes"], c["superseded_by"]) for c in listed] == [
        ("c2", "b", "c1", None),
        ("c1", "a", None, "c2"),
    ]
    # Retrying the re-vote with its id is answered as the first time.
    again = await api.keyed.post("/api/v1/comparisons", json=_vote("c2", "b", supersedes="c1"))
    assert again.status_code == 201


async def test_a_revote_must_replace_ones_own_vote_on_the_same_runs(api: Api) -> None:
    await _seed(api)
    await api.keyed.post("/api/v1/comparisons", json=_vote("c1", "a"))
    await api.keyed.post("/api/v1/comparisons", json=_vote("c2", "tie", supersedes="c1"))
    cases = {
        "missing": (_vote("x1", "a", supersedes="nope"), 404),
        "someone else's": (_vote("x2", "a", supersedes="c2", user="bob"), 409),
        "other runs": (
            _vote("x3", "a", supersedes="c2", candidates=[{"run_id": "ra"}, {"run_id": "rc"}]),
            409,
        ),
        "already replaced": (_vote("x4", "b", supersedes="c1"), 409),
        "itself": (_vote("x5", "b", supersedes="x5"), 422),
    }
    answers = {}
    for name, (body, _) in cases.items():
        response = await api.keyed.post("/api/v1/comparisons", json=body)
        answers[name] = (response.status_code, sorted(response.json()["error"]))
    assert answers == {
        name: (status, ["details", "message", "type"]) for name, (_, status) in cases.items()
    }
    listed = (await api.keyed.get("/api/v1/comparisons")).json()["data"]
    assert [(c["id"], c["superseded_by"]) for c in listed] == [("c2", None), ("c1", "c2")]


async def test_a_batch_may_hold_a_vote_and_its_revote(api: Api) -> None:
    await _seed(api)
    items = [
        {"type": "comparison", **_vote("c1", "a")},
        {"type": "comparison", **_vote("c2", "both_bad", supersedes="c1")},
        {"type": "comparison", **_vote("c3", "a", supersedes="c1")},
    ]
    answer = (await api.keyed.post("/api/v1/ingest", json={"items": items})).json()
    assert [(r["id"], r["status"]) for r in answer["successes"]] == [("c1", 201), ("c2", 201)]
    assert [(r["id"], r["status"], r["error"]["message"]) for r in answer["errors"]] == [
        ("c3", 409, "comparison c1 was already superseded by c2")
    ]
    listed = (await api.keyed.get("/api/v1/comparisons")).json()["data"]
    assert [(c["id"], c["outcome"], c["superseded_by"]) for c in listed] == [
        ("c2", "both_bad", None),
        ("c1", "a", "c2"),
    ]
