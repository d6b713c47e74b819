"""Stopping the server while answers stream: every run is stored before the server is gone.

The app runs under uvicorn with its lifespan, as ``tuneback serve`` runs it; the
model is a scripted one that takes its time between chunks (on both databases).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.api.conftest import make_app
from tests.client.servers import free_port
from tuneback.models import ScriptedModel
from tuneback.services.keys import KeyService
from tuneback.storage import Store

QUESTION = [{"role": "user", "content": "Count slowly."}]


class Served:
    """The app under uvicorn with its lifespan on, in a thread; :meth:`stop` returns when
    uvicorn has run the lifespan's shutdown."""

    def __init__(self, store: Store) -> None:
        self.app = make_app(store)
        model = self.app.state.services.models.default
        assert isinstance(model, ScriptedModel)
        self.model = model
        self.key = KeyService(store).create("p").key
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "the server failed to start"
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not stop"

    def stream(self) -> httpx.Response:
        return httpx.stream(  # type: ignore[return-value]
            "POST",
            f"{self.url}/v1/chat/completions",
            json={"model": "scripted", "messages": QUESTION, "stream": True},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    served = Served(store)
    served.start()
    try:
        yield served
    finally:
        if served.thread.is_alive():
            served.stop()


def test_a_client_hanging_up_just_before_shutdown_still_leaves_its_run(
    served: Served, store: Store
) -> None:
    # Long pauses between chunks: the model is mid-pause when the server stops.
    served.model.enqueue(chunks=[f"w{n} " for n in range(40)], delay=0.3)
    with served.stream() as response:
        run_id = response.headers["x-tuneback-run-id"]
        lines = response.iter_lines()
        while "w1 " not in next(lines):
            pass
    served.stop()
    # No waiting here: shutdown itself waited for the stream to be stopped and stored.
    run = store.get_run(run_id)
    assert run.status == "cancelled"
    assert run.output is not None
    assert run.output.startswith("w0 w1 ")
    assert len(run.output.split()) < 40
    assert served.model.calls[0].closed_early
    assert served.app.state.services.background.running == []


def test_a_stream_under_way_at_shutdown_is_finished_and_stored(
    served: Served, store: Store
) -> None:
    served.model.enqueue(chunks=[f"w{n} " for n in range(8)], delay=0.05)
    received: list[str] = []
    with served.stream() as response:
        run_id = response.headers["x-tuneback-run-id"]
        lines = response.iter_lines()
        received.append(next(lines))
        stopping = threading.Thread(target=served.stop)
        stopping.start()
        received.extend(lines)
    stopping.join(30)
    events = [line for line in received if line]
    assert events[-1] == "data: [DONE]"
    assert len(events) == 1 + 8 + 1 + 1  # the role, each chunk, the stop, [DONE]
    run = store.get_run(run_id)
    assert (run.status, run.output) == ("ok", "".join(f"w{n} " for n in range(8)))


def test_no_new_stream_is_started_once_shutdown_has_begun(store: Store) -> None:
    served = Served(store)
    background = served.app.state.services.background
    background.shutdown(timeout=1)
    served.start()
    try:
        served.model.enqueue("never said")
        refused = httpx.post(
            f"{served.url}/v1/chat/completions",
            json={"model": "scripted", "messages": QUESTION, "stream": True},
            headers={"Authorization": f"Bearer {served.key}"},
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "shutting_down"
        assert served.model.calls == []
        assert store.list_runs("p") == []
    finally:
        served.stop()
