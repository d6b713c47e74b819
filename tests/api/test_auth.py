"""Keys and tokens: every write needs a key; a token rates one run, until it expires."""

import base64
import json
from datetime import timedelta

import httpx
import pytest

from tests.api.conftest import BASE, Api, make_app, run_body
from tuneback.services.keys import KeyService

TOKEN_ROUTES = {"/api/v1/feedback/tokens/{token}"}


async def test_every_route_without_a_key_is_401(api: Api) -> None:
    checked = 0
    for path, operations in api.app.openapi()["paths"].items():
        if path in TOKEN_ROUTES or not path.startswith("/api/v1"):
            continue
        concrete = path.replace("{", "").replace("}", "")
        for method in operations:
            response = await api.anonymous.request(method.upper(), concrete, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["type"] == "unauthorized"
            checked += 1
    assert checked >= 25


async def test_a_wrong_key_is_401(api: Api) -> None:
    response = await api.anonymous.post(
        "/api/v1/runs", json=run_body(), headers={"Authorization": "Bearer tb_wrong"}
    )
    assert response.status_code == 401


async def test_without_auth_no_key_is_needed(store) -> None:  # type: ignore[no-untyped-def]
    app = make_app(store, auth=False, project="open")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        response = await client.post("/api/v1/runs", json=run_body())
        assert response.status_code == 201
        assert response.json()["project"] == "open"


async def _token(api: Api, run_id: str, **extra: object) -> dict[str, str]:
    response = await api.keyed.post("/api/v1/feedback/tokens", json={"run_id": run_id, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_token_rates_its_run_by_post_and_by_link(api: Api) -> None:
    await api.keyed.post("/api/v1/runs", json=run_body(id="a"))
    token = await _token(api, "a", key="stars")
    assert token["url"] == f"http://tuneback.test/api/v1/feedback/tokens/{token['token']}"
    posted = await api.anonymous.post(token["url"], json={"value": 5, "user": "ann"})
    assert posted.status_code == 201
    assert (posted.json()["run_id"], posted.json()["key"], posted.json()["score"]) == (
        "a",
        "stars",
        1.0,
    )
    # Opened as a link it shows a page (tests/api/test_feedback_link.py) and records nothing.
    opened = await api.anonymous.get(token["url"], params={"value": "2", "user": "bob"})
    assert opened.status_code == 200
    assert [f.user for f in api.store.feedback_for_run("a", history=True)] == ["ann"]


def _forge(token: str, **changes: object) -> str:
    prefix, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{prefix}.{forged}.{signature}"


async def test_a_token_for_run_a_cannot_rate_run_b(api: Api) -> None:
    for run_id in ("a", "b"):
        await api.keyed.post("/api/v1/runs", json=run_body(id=run_id))
    token = (await _token(api, "a"))["token"]
    forged = _forge(token, r="b")
    response = await api.anonymous.post(f"/api/v1/feedback/tokens/{forged}", json={"value": "up"})
    assert response.status_code == 401
    assert "signature" in response.json()["error"]["message"]
    # Nor is a token an API key.
    as_key = await api.anonymous.post(
        "/api/v1/feedback",
        json={"run_id": "b", "key": "thumbs", "value": "up"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert as_key.status_code == 401
    assert api.store.feedback_for_run("b") == []


async def test_a_token_cannot_change_its_key(api: Api) -> None:
    await api.keyed.post("/api/v1/runs", json=run_body(id="a"))
    token = (await _token(api, "a", key="thumbs"))["token"]
    response = await api.anonymous.post(
        f"/api/v1/feedback/tokens/{token}", json={"value": "up", "key": "stars"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "body.key: Extra inputs are not permitted"


async def test_an_expired_token_is_refused(api: Api) -> None:
    await api.keyed.post("/api/v1/runs", json=run_body(id="a"))
    keys: KeyService = api.app.state.api.keys
    token, _ = keys.issue_token(
        run_id="a", key="thumbs", project="demo", api_key_id=None, expires_in=timedelta(seconds=1)
    )
    expired = _forge(token, e=1)  # a past expiry, correctly signed below
    prefix, body, _sig = expired.split(".")
    expired = f"{prefix}.{body}.{keys._sign(prefix, body)}"
    response = await api.anonymous.post(f"/api/v1/feedback/tokens/{expired}", json={"value": "up"})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]
    page = await api.anonymous.get(f"/api/v1/feedback/tokens/{expired}", params={"value": "up"})
    assert page.status_code == 401
    assert "The feedback token expired at 1970-01-01T00:00:01+00:00." in page.text


async def test_a_token_dies_with_its_key(api: Api) -> None:
    await api.keyed.post("/api/v1/runs", json=run_body(id="a"))
    token = (await _token(api, "a"))["token"]
    key_id = (await api.keyed.get("/api/v1/keys")).json()["data"][0]["id"]
    await api.keyed.delete(f"/api/v1/keys/{key_id}")
    response = await api.anonymous.post(f"/api/v1/feedback/tokens/{token}", json={"value": "up"})
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


@pytest.mark.parametrize("seconds", [0, 31 * 24 * 3600])
async def test_token_lifetimes_are_bounded(api: Api, seconds: int) -> None:
    await api.keyed.post("/api/v1/runs", json=run_body(id="a"))
    response = await api.keyed.post(
        "/api/v1/feedback/tokens", json={"run_id": "a", "expires_in": seconds}
    )
    assert response.status_code == 422
