"""GET /api/v1/runs: every criterion of RunCriteria, and unknown filters refused by name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import BASE, Api, make_app
from tests.storage.criteria_seed import PROJECT, seed_events
from tests.visitors import open_pages
from tuneback.storage import Store


@pytest.fixture
async def seeded(api: Api) -> Api:
    api.store.append_many(seed_events())
    return api


async def listed(api: Api, params: Any) -> set[str]:
    response = await api.keyed.get("/api/v1/runs", params=params)
    assert response.status_code == 200, response.text
    return {run["id"] for run in response.json()["data"]}


async def test_has_comment_and_correction_mean_what_the_badges_show(seeded: Api) -> None:
    assert await listed(seeded, {"has": "comment"}) == {"noted", "disliked-with-comment"}
    assert await listed(seeded, {"has": "correction"}) == {
        "corrected",
        "disliked-with-correction",
    }
    assert await listed(seeded, {"lacks": "comment", "has_feedback": "thumbs"}) == {
        "liked",
        "changed-mind",
        "disliked-with-correction",
    }


async def test_the_list_takes_every_criterion(seeded: Api) -> None:
    assert await listed(seeded, [("model", "alpha"), ("model", "gamma"), ("tag", "vip")]) == {
        "liked"
    }
    assert await listed(seeded, {"text": "100%", "has": "none"}) == {"untouched"}
    assert await listed(seeded, {"min_tokens": 100, "max_latency_ms": 60}) == {"noted"}
    assert await listed(
        seeded, {"since": "2026-03-02T13:00:00Z", "until": "2026-03-02T14:00:00Z"}
    ) == {"regenerated"}
    # The key's project holds them all; another project's run never shows.
    assert "elsewhere" not in await listed(seeded, {"limit": 500})


async def test_an_unknown_parameter_is_refused_by_name(seeded: Api) -> None:
    response = await seeded.keyed.get("/api/v1/runs", params={"hass": "comment"})
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "type": "validation_error",
            "message": "query.hass: Extra inputs are not permitted",
            "details": [
                {
                    "loc": ["query", "hass"],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
            ],
        }
    }


async def test_an_unknown_kind_of_feedback_is_refused(seeded: Api) -> None:
    response = await seeded.keyed.get("/api/v1/runs", params={"has": "bogus"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["message"] == (
        "query.has: Input should be 'feedback', 'comment', 'correction' or 'none'"
    )
    assert [(d["loc"], d["type"]) for d in error["details"]] == [
        (["query", "has"], "literal_error")
    ]


async def test_the_explorer_lists_what_the_api_lists_and_badges_agree(store: Store) -> None:
    store.append_many(seed_events())
    transport = httpx.ASGITransport(app=make_app(store, project=PROJECT))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        client = await open_pages(client)
        every = (await client.get("/runs?format=json")).json()
        commented = {
            row["run"]["id"]
            for row in every["data"]
            if any(fb["comment"] for fb in row["feedback"])
        }
        for kind, expected in (
            ("comment", {"noted", "disliked-with-comment"}),
            ("correction", {"corrected", "disliked-with-correction"}),
        ):
            page = (await client.get(f"/runs?format=json&has={kind}")).json()
            assert {row["run"]["id"] for row in page["data"]} == expected
        assert commented == {"noted", "disliked-with-comment"}
