"""Upstream (a scripted OpenAI-compatible server) → tuneback's proxy → the openai client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from tests.client.servers import LiveServer
from tests.models.openai_server import FakeOpenAIServer
from tuneback.config import Settings
from tuneback.models import EchoModel
from tuneback.models.openai_compat import create_openai
from tuneback.server import create_app
from tuneback.services.keys import KeyService
from tuneback.storage import Store


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Proxy:
    url: str
    key: str
    store: Store
    upstream: FakeOpenAIServer

    def client(self, **options: object) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=self.key,
            max_retries=0,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def proxy(store: Store, upstream: FakeOpenAIServer) -> Iterator[Proxy]:
    upstream.reset()
    model = create_openai("fake-model", base_url=upstream.base_url, max_retries=0, timeout=10)
    app = create_app(
        Settings(database_url=str(store.url)), store=store, models=[model, EchoModel()]
    )
    key = KeyService(store).create("demo").key
    server = LiveServer(app)
    server.start()
    try:
        yield Proxy(server.url, key, store, upstream)
    finally:
        server.stop()
