"""Delivery over a real socket: a server restart, a lost answer and the exit of the host app."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx

from tests.api.conftest import make_app
from tests.client.conftest import Sdk
from tests.client.servers import LiveServer
from tuneback import Client
from tuneback.services.keys import KeyService
from tuneback.storage import Store


def _run_events(store: Store) -> list[str]:
    return [e.id for e in store.events_after(0, 10_000, types=["run.completed"])]


def test_a_server_restart_loses_nothing_and_doubles_nothing(store: Store) -> None:
    key = KeyService(store).create("demo").key
    server = LiveServer(make_app(store))
    server.start()
    client = Client(
        server.url, key, flush_interval=0.05, batch_size=20, max_retries=100, retry_backoff=0.02
    )
    try:
        sent = [client.log_run(inputs=f"q{n}", output=f"a{n}") for n in range(30)]
        assert client.flush(timeout=20)
        server.stop()
        sent += [client.log_run(inputs=f"q{n}", output=f"a{n}") for n in range(30, 60)]
        assert not client.flush(timeout=0.5)  # nobody is listening
        assert client.stats.retries > 0
        server = LiveServer(server.app, port=server.port)
        server.start()
        assert client.flush(timeout=30)
    finally:
        client.close(timeout=5)
        server.stop()
    assert sorted(_run_events(store)) == sorted(sent)
    assert client.stats.sent == 60
    assert client.stats.dropped == 0


def test_an_answer_lost_after_the_commit_is_retried_without_a_duplicate(sdk: Sdk) -> None:
    lost = {"done": False}

    def lose_first_answer(request: httpx.Request) -> httpx.Response:
        response = sdk.transport.handle_request(request)
        if not lost["done"]:
            lost["done"] = True
            raise httpx.ReadError("connection reset after the server committed", request=request)
        return response

    client = Client(
        "http://tuneback.test",
        sdk.key,
        transport=httpx.MockTransport(lose_first_answer),
        flush_interval=60,
        retry_backoff=0.01,
    )
    run_id = client.log_run(inputs="q", output="a")
    feedback_id = client.record_feedback(run_id, "thumbs", value="up", user="ann")
    assert client.flush(timeout=10)
    client.close()
    assert lost["done"]
    written = sdk.store.events_after(0, types=["run.completed", "feedback.recorded"])
    assert [e.id for e in written] == [run_id, feedback_id]


SCRIPT = textwrap.dedent(
    """
    import sys
    import tuneback

    client = tuneback.Client(sys.argv[1], sys.argv[2], flush_interval=3600, batch_size=1000)
    for n in range(25):
        client.log_run(inputs=f"q{n}", output=f"a{n}", id=f"exit-{n}")
    # No flush, no close: the at-exit hook must send them.
    """
)


def test_queued_items_are_sent_when_the_app_exits(store: Store) -> None:
    key = KeyService(store).create("demo").key
    server = LiveServer(make_app(store))
    server.start()
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, server.url, key],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert sorted(_run_events(store)) == sorted(f"exit-{n}" for n in range(25))
