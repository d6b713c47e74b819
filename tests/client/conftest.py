from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from tests.api.conftest import make_app
from tests.client.servers import AppTransport
from tuneback import Client
from tuneback.services.keys import KeyService
from tuneback.storage import Store


@dataclass
class Sdk:
    app: FastAPI
    store: Store
    key: str
    transport: AppTransport

    def client(self, **options: object) -> Client:
        return Client(
            "http://tuneback.test",
            self.key,
            transport=self.transport,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def sdk(store: Store) -> Iterator[Sdk]:
    app = make_app(store)
    key = KeyService(store).create("demo").key
    transport = AppTransport(app)
    try:
        yield Sdk(app, store, key, transport)
    finally:
        transport.close()
