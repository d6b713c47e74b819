"""The examples run as a user runs them: a process talking to a real tuneback server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from gradio_client import Client as GradioClient

from tests.client.conftest import Sdk
from tests.client.servers import free_port, serving
from tests.integrations.test_gradio import Chat
from tests.integrations.test_gradio_blocks import BlocksChat
from tests.models.openai_server import FakeOpenAIServer
from tuneback.integrations.gradio import text_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, env: dict[str, str], typed: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TUNEBACK_"))}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        input=typed,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_openai_example(sdk: Sdk, openai_server: FakeOpenAIServer) -> None:
    with serving(sdk.app) as server:
        done = run_example(
            "openai_chat.py",
            {
                "TUNEBACK_URL": server.url,
                "TUNEBACK_API_KEY": sdk.key,
                "OPENAI_BASE_URL": openai_server.base_url,
                "OPENAI_API_KEY": "sk-test",
            },
            "Hi\ny\nAnd again?\nn\n\n",
        )
    assert done.stdout.count("Hello from the server") == 2
    runs = sdk.store.list_runs("demo")
    assert len(runs) == 2
    assert all(r.output == "Hello from the server" for r in runs)
    assert all(r.completion_tokens == 4 for r in runs)
    scores = sorted(f.score or 0.0 for r in runs for f in sdk.store.feedback_for_run(r.id))
    assert scores == [0.0, 1.0]
    assert f"{server.url}/runs/" in done.stderr


def test_the_langchain_example(sdk: Sdk) -> None:
    with serving(sdk.app) as server:
        done = run_example(
            "langchain_chain.py",
            {"TUNEBACK_URL": server.url, "TUNEBACK_API_KEY": sdk.key},
            "Why is the sky blue?\ny\n\n",
        )
    assert "scatters blue light" in done.stdout
    runs = sdk.store.list_runs("demo")
    [root] = [r for r in runs if r.parent_run_id is None]
    assert {r.parent_run_id for r in runs if r.id != root.id} == {root.id}
    assert [f.score for f in sdk.store.feedback_for_run(root.id)] == [1.0]


@contextmanager
def gradio_example(name: str, env: dict[str, str]) -> Iterator[GradioClient]:
    """The example run as ``python examples/NAME`` on a free port, and a gradio_client for it;
    stopped with Ctrl-C at the end, which it must survive cleanly."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TUNEBACK_"))}
    app = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name)],
        env={
            **clean,
            **env,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_ANALYTICS_ENABLED": "False",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield connect(f"http://127.0.0.1:{port}/", app)
    finally:
        app.send_signal(signal.SIGINT)
        app.wait(30)
    assert app.returncode == 0, app.stderr.read() if app.stderr else ""


def test_the_gradio_example(sdk: Sdk, openai_server: FakeOpenAIServer) -> None:
    with serving(sdk.app) as server:
        env = {
            "TUNEBACK_URL": server.url,
            "TUNEBACK_API_KEY": sdk.key,
            "OPENAI_BASE_URL": openai_server.base_url,
            "OPENAI_API_KEY": "sk-test",
        }
        with gradio_example("gradio_chat.py", env) as gc:
            chat = Chat(gc, "/chat")
            first = chat.ask("Hi")
            chat.ask("And again?")
            chat.event("like", 1, liked=True)
            chat.event("like", 3, liked=False)
            wait_for(lambda: len(sdk.store.feedback_for_runs(run_ids(sdk))) == 2)
    assert [m["content"] for m in chat.messages[1::2]] == ["Hello from the server"] * 2
    # The model saw the conversation so far, as text.
    assert openai_server.requests[-1].body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello from the server"},
        {"role": "user", "content": "And again?"},
    ]
    runs = sdk.store.list_runs("demo")
    assert [(r.output, r.model, r.conversation_id) for r in runs] == [
        ("Hello from the server", "gpt-4o-mini", first.conversation_id)
    ] * 2
    scores = {r.id: [f.score for f in sdk.store.feedback_for_run(r.id)] for r in runs}
    assert scores == {first.run_id: [1.0], runs[0].id: [0.0]}


def test_the_gradio_blocks_example(sdk: Sdk) -> None:
    with serving(sdk.app) as server:
        env = {"TUNEBACK_URL": server.url, "TUNEBACK_API_KEY": sdk.key}
        with gradio_example("gradio_blocks.py", env) as gc:
            chat = BlocksChat(gc, add="/add_message", bot="/bot", vote="/vote")
            first = chat.ask("Hi")
            second = chat.ask("And again?")
            chat.like(3, liked=True)
            wait_for(lambda: len(sdk.store.feedback_for_runs(run_ids(sdk))) == 1)
    assert [text_of(m["content"]) for m in chat.messages] == [
        "Hi",
        "You said: Hi",
        "And again?",
        "You said: And again?",
    ]
    runs = sdk.store.list_runs("demo")
    assert sorted((r.output, r.model, r.conversation_id) for r in runs) == [
        ("You said: And again?", "echo", first.conversation_id),
        ("You said: Hi", "echo", first.conversation_id),
    ]
    assert [f.score for f in sdk.store.feedback_for_run(second.run_id)] == [1.0]


def run_ids(sdk: Sdk) -> list[str]:
    return [r.id for r in sdk.store.list_runs("demo")]


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def connect(url: str, app: subprocess.Popen[str], timeout: float = 60.0) -> GradioClient:
    """A gradio_client for the example's app, once it answers."""
    deadline = time.monotonic() + timeout
    while True:
        assert app.poll() is None, app.stderr.read() if app.stderr else "the app ended"
        try:
            httpx.get(url, timeout=1.0)
            return GradioClient(url, verbose=False)
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.2)
