"""The real app on the test's database, reached in-process through ``httpx.ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tuneback.config import Settings
from tuneback.models import ScriptedModel
from tuneback.server import create_app
from tuneback.server.security import LOOPBACK_HOSTS
from tuneback.services.keys import KeyService
from tuneback.storage import Store

BASE = "http://tuneback.test"
TEST_HOSTS = ["tuneback.test", *LOOPBACK_HOSTS]
"""The in-process clients name tuneback.test; live servers are reached on loopback."""


@dataclass
class Api:
    app: FastAPI
    store: Store
    key: str
    keyed: httpx.AsyncClient
    anonymous: httpx.AsyncClient


def make_app(store: Store, **settings: object) -> FastAPI:
    settings = {"allowed_hosts": TEST_HOSTS, **settings}
    return create_app(
        Settings(database_url=str(store.url), **settings),  # type: ignore[arg-type]
        store=store,
        models=[ScriptedModel()],
    )


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    app = make_app(store)
    key = KeyService(store).create("demo", name="tests").key
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as keyed,
        httpx.AsyncClient(transport=transport, base_url=BASE) as anonymous,
    ):
        yield Api(app, store, key, keyed, anonymous)


def run_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "inputs": [{"role": "user", "content": "What is 2 + 2?"}],
        "output": "4",
        "model": "gpt-test",
        "user": "ann",
        "latency_ms": 120.0,
        "prompt_tokens": 9,
        "completion_tokens": 1,
        "tags": ["math"],
    }
    body.update(overrides)
    return body
