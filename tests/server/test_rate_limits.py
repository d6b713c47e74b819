"""Rate limits on writes: per API key, else per client address; 429 with Retry-After; reads free."""

from __future__ import annotations

import pydantic
import pytest
from httpx import ASGITransport, AsyncClient

from tests.api.conftest import BASE, make_app, run_body
from tuneback.config import Settings
from tuneback.services.keys import KeyService
from tuneback.storage import Store

ELSEWHERE = ("203.0.113.7", 50000)
"""A client that is not on loopback (loopback is exempt by default)."""


def _client(
    app: object, key: str | None = None, address: tuple[str, int] = ELSEWHERE
) -> AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = ASGITransport(app=app, client=address)  # type: ignore[arg-type]
    return AsyncClient(transport=transport, base_url=BASE, headers=headers)


def _refusal(response: object, per: str) -> int:
    """Check a 429 whole; returns its Retry-After."""
    assert response.status_code == 429  # type: ignore[attr-defined]
    retry_after = int(response.headers["retry-after"])  # type: ignore[attr-defined]
    assert 1 <= retry_after <= 60
    assert response.json() == {  # type: ignore[attr-defined]
        "error": {
            "type": "rate_limited",
            "message": f"too many writes: at most 3 per 1 minute per {per} "
            f"(TUNEBACK_RATE_LIMIT); try again in {retry_after} s",
            "details": {"limit": "3 per 1 minute", "per": per, "retry_after": retry_after},
        }
    }
    return retry_after


async def test_a_key_over_its_limit_gets_429_and_reads_go_on(store: Store) -> None:
    app = make_app(store, rate_limit="3/minute")
    key = KeyService(store).create("demo").key
    other = KeyService(store).create("demo").key
    async with _client(app, key) as client, _client(app, other) as second:
        for n in range(3):
            written = await client.post("/api/v1/runs", json=run_body(id=f"r{n}"))
            assert written.status_code == 201, written.text
        _refusal(await client.post("/api/v1/runs", json=run_body(id="r3")), "API key")
        _refusal(await client.delete("/api/v1/feedback/anything"), "API key")
        assert (await client.get("/api/v1/runs/r0")).status_code == 200
        # Another key from the same address has its own budget.
        assert (await second.post("/api/v1/runs", json=run_body(id="s0"))).status_code == 201
    runs = store.events_after(0, types=["run.completed"])
    assert [e.payload.run.id for e in runs] == ["r0", "r1", "r2", "s0"]  # type: ignore[attr-defined]


async def test_without_a_valid_key_writes_count_against_the_address(store: Store) -> None:
    app = make_app(store, rate_limit="3/minute")
    async with (
        _client(app, "tb_guessed") as guesser,
        _client(app, address=("198.51.100.9", 40000)) as neighbour,
    ):
        # Unknown keys, the proxy and the pages share the address's budget.
        assert (await guesser.post("/api/v1/runs", json=run_body())).status_code == 401
        assert (await guesser.post("/v1/chat/completions", json={})).status_code == 401
        assert (await guesser.post("/api/v1/keys", json={})).status_code == 401
        _refusal(await guesser.post("/ui/chat", json={}), "client address")
        _refusal(await guesser.post("/api/v1/feedback/tokens/ft1.x.y", json={}), "client address")
        assert (await guesser.get("/healthz")).status_code == 200
        # Another address is not affected.
        assert (await neighbour.post("/api/v1/runs", json=run_body())).status_code == 401
    assert store.last_seq() == 0


async def test_loopback_is_exempt_unless_told_otherwise(store: Store) -> None:
    key = KeyService(store).create("demo").key
    loopback = ("127.0.0.1", 40000)
    exempt = make_app(store, rate_limit="3/minute")
    async with _client(exempt, key, address=loopback) as client:
        for n in range(5):
            written = await client.post("/api/v1/runs", json=run_body(id=f"a{n}"))
            assert written.status_code == 201
    limited = make_app(store, rate_limit="3/minute", rate_limit_exempt="")
    async with _client(limited, key, address=loopback) as client:
        statuses = [
            (await client.post("/api/v1/runs", json=run_body(id=f"b{n}"))).status_code
            for n in range(4)
        ]
    assert statuses == [201, 201, 201, 429]
    network = make_app(store, rate_limit="3/minute", rate_limit_exempt="203.0.113.0/24")
    off = make_app(store, rate_limit="off")
    for app in (network, off):
        async with _client(app, key) as client:
            for n in range(5):
                written = await client.post("/api/v1/runs", json=run_body(id=f"c{n}"))
                assert written.status_code == 201


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate_limit": "lots"}, "'lots' is not a rate like 600/minute or 10/second;500/hour"),
        ({"rate_limit_exempt": "10.0.0.0/8,nowhere"}, "'nowhere' is not an address or network"),
    ],
)
def test_bad_rate_settings_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_the_defaults_are_generous_and_spare_loopback() -> None:
    settings = Settings()
    assert (settings.rate_limit, settings.rate_limit_exempt) == (
        "1200/minute",
        ["127.0.0.1", "::1"],
    )
