import os
from collections.abc import AsyncIterator

import httpx
import pytest

from tuneback import __version__
from tuneback.config import Settings
from tuneback.server import create_app
from tuneback.storage import Store


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=str(store.url)), store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client


async def test_healthz_reports_the_database(client: httpx.AsyncClient, dialect: str) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": __version__,
        "database": dialect,
        "process": os.getpid(),
    }


async def test_unknown_path_gets_the_one_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"type": "not_found", "message": "Not Found", "details": None}
    }


async def test_wrong_method_gets_the_one_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"
