"""``serve --any-model``: the proxy answers a request that names no model, or an unknown
one, with the default model, and the run says so; without it both are refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from typer.testing import CliRunner

from tests.client.servers import LiveServer
from tests.models.openai_server import FakeOpenAIServer
from tests.proxy.conftest import Proxy
from tuneback.cli import app as cli
from tuneback.config import Settings
from tuneback.models import EchoModel
from tuneback.server import create_app
from tuneback.server.workers import worker_environment
from tuneback.services.keys import KeyService
from tuneback.storage import Store

QUESTION = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def lenient(store: Store, upstream: FakeOpenAIServer) -> Iterator[Proxy]:
    settings = Settings(database_url=str(store.url), proxy_any_model=True)
    app = create_app(settings, store=store, models=[EchoModel()])
    key = KeyService(store).create("demo").key
    server = LiveServer(app)
    server.start()
    try:
        yield Proxy(server.url, key, store, upstream)
    finally:
        server.stop()


def test_a_request_naming_no_model_or_an_unknown_one_gets_the_default(lenient: Proxy) -> None:
    client = lenient.client()
    named = client.chat.completions.create(model="dummy", messages=QUESTION)  # type: ignore[arg-type]
    assert (named.model, named.choices[0].message.content) == ("echo", "Hi")
    # A TGI-style body with no model at all.
    bare = httpx.post(
        f"{lenient.url}/v1/chat/completions",
        json={"messages": QUESTION},
        headers={"Authorization": f"Bearer {lenient.key}"},
    )
    assert bare.status_code == 200, bare.text
    assert bare.json()["model"] == "echo"
    offered = client.chat.completions.create(model="echo", messages=QUESTION)  # type: ignore[arg-type]
    runs = {r: lenient.store.get_run(r) for r in (named.id, bare.json()["id"], offered.id)}
    assert [
        (r.model, r.params["requested_model"], r.metadata.get("default_model"))
        for r in runs.values()
    ] == [
        ("echo", "dummy", True),
        ("echo", None, True),
        ("echo", "echo", None),
    ]


def test_without_it_both_are_refused(proxy: Proxy) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        proxy.client().chat.completions.create(model="dummy", messages=QUESTION)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found"
    assert "--any-model" in str(unknown.value)
    bare = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        json={"messages": QUESTION},
        headers={"Authorization": f"Bearer {proxy.key}"},
    )
    assert bare.status_code == 400
    assert bare.json()["error"]["param"] == "model"
    assert bare.json()["error"]["message"].startswith("model: Field required")


def test_the_flag_reaches_the_settings_and_the_workers() -> None:
    settings = Settings(proxy_any_model=True)
    assert (
        worker_environment(settings, models=["echo"], pages=["chat"])["TUNEBACK_PROXY_ANY_MODEL"]
        == "true"
    )
    help_text = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200).output
    assert "--any-model" in help_text
