"""The dashboard's JSON twin under /api/v1/stats, scoped to the key's project."""

from __future__ import annotations

from tests.analytics.seed import seed
from tests.api.conftest import Api


async def test_stats_for_the_keys_project(api: Api) -> None:
    seeded = seed(api.store, runs=90, project="demo")
    seed(api.store, runs=30, project="other")
    response = await api.keyed.get("/api/v1/stats", params={"period": "all"})
    assert response.status_code == 200
    data = response.json()
    assert (data["project"], data["period"]) == ("demo", "all")
    assert data["summary"]["runs"] == len(seeded.runs)
    assert {row["group"] for row in data["by_model"]} == {"alpha", "beta", "gamma"}

    other = await api.keyed.get("/api/v1/stats", params={"project": "other"})
    assert other.status_code == 403
    bad = await api.keyed.get("/api/v1/stats", params={"period": "fortnight"})
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == (
        "query.period: Input should be '24h', '7d', '30d', '90d' or 'all'"
    )
    assert (await api.anonymous.get("/api/v1/stats")).status_code == 401
