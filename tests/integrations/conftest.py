from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import make_app
from tests.client.conftest import Sdk
from tests.client.servers import AppTransport
from tests.models.openai_server import FakeOpenAIServer
from tuneback.services.keys import KeyService
from tuneback.storage import Store


@pytest.fixture
def sdk(store: Store) -> Iterator[Sdk]:
    app = make_app(store)
    key = KeyService(store).create("demo").key
    transport = AppTransport(app)
    try:
        yield Sdk(app, store, key, transport)
    finally:
        transport.close()


@pytest.fixture(scope="session")
def _running_openai_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(_running_openai_server: FakeOpenAIServer) -> FakeOpenAIServer:
    _running_openai_server.reset()
    return _running_openai_server
