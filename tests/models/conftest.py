"""Fixtures for the model adapter tests: a loopback OpenAI server and a clean env."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.openai_server import FakeOpenAIServer


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own keys and URLs must never leak into what the tests send.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


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
