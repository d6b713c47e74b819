"""A revoked API key is refused at once by the process that revoked it, and soon by the others."""

from __future__ import annotations

from tests.api.conftest import Api
from tuneback.services.keys import KEY_CACHE_SECONDS, KeyService
from tuneback.storage import Store


async def test_a_key_revoked_through_the_api_is_refused_on_the_next_request(api: Api) -> None:
    made = await api.keyed.post("/api/v1/keys", json={"name": "ci"})
    assert made.status_code == 201
    other = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await api.anonymous.get("/api/v1/runs", headers=other)).status_code == 200

    revoked = await api.keyed.delete(f"/api/v1/keys/{made.json()['id']}")
    assert revoked.status_code == 200
    response = await api.anonymous.get("/api/v1/runs", headers=other)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


async def test_a_key_that_revokes_itself_is_refused_next(api: Api) -> None:
    assert (await api.keyed.get("/api/v1/runs")).status_code == 200
    own = (await api.keyed.get("/api/v1/keys")).json()["data"][0]["id"]
    assert (await api.keyed.delete(f"/api/v1/keys/{own}")).status_code == 200
    assert (await api.keyed.get("/api/v1/runs")).status_code == 401


def test_a_key_revoked_by_the_service_is_refused_at_once(store: Store) -> None:
    keys = KeyService(store)
    made = keys.create("demo")
    assert keys.verify(made.key) == made.record
    keys.revoke(made.record.id)
    assert keys.cached(made.key) is None
    assert keys.verify(made.key) is None


def test_other_processes_refuse_a_revoked_key_within_the_cache_time(store: Store) -> None:
    now = [100.0]
    server = KeyService(store, clock=lambda: now[0])
    made = server.create("demo")
    assert server.verify(made.key) is not None
    KeyService(store).revoke(made.record.id)  # another process: `tuneback keys revoke`

    now[0] += KEY_CACHE_SECONDS - 0.1
    assert server.cached(made.key) is not None  # still remembered, as documented
    now[0] += 0.1
    assert server.cached(made.key) is None
    assert server.verify(made.key) is None
    assert KEY_CACHE_SECONDS <= 2.0
