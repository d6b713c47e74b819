"""``tuneback.launch`` from a script, and the model objects it accepts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.visitors import open_pages_sync
from tests.web.conftest import _free_port
from tuneback.domain import ChatMessage
from tuneback.launch import as_adapter
from tuneback.models import EchoModel, ModelOptions, complete


@dataclass
class Chunk:
    content: str


class TinyRunnable:
    """Shaped like a LangChain runnable: stream() and invoke() over (role, text) tuples."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []

    def invoke(self, conversation: list[tuple[str, str]], config: object = None) -> Chunk:
        return Chunk("".join(c.content for c in self.stream(conversation, config)))

    def stream(self, conversation: list[tuple[str, str]], config: object = None) -> Iterator[Chunk]:
        self.seen.append(conversation)
        yield from (Chunk("Hello"), Chunk(", "), Chunk(conversation[-1][1]))


def test_model_objects_become_adapters() -> None:
    runnable = TinyRunnable()
    adapter = as_adapter(runnable)
    messages = [
        ChatMessage(role="system", content="be nice"),
        ChatMessage(role="user", content="Ann"),
    ]
    text, usage = complete(adapter, messages, ModelOptions())
    assert text == "Hello, Ann"
    assert runnable.seen == [[("system", "be nice"), ("human", "Ann")]]
    assert usage.completion_tokens > 0

    def shout(messages: list[dict[str, str]]) -> str:
        return messages[-1]["content"].upper()

    assert complete(as_adapter(shout), messages)[0] == "ANN"
    echo = EchoModel()
    assert as_adapter(echo) is echo
    assert as_adapter("echo").spec == "echo"


def test_launch_serves_a_function_as_a_chat(tmp_path: Path) -> None:
    port = _free_port()
    script = (
        "import tuneback\n"
        "def reply(messages):\n"
        "    yield 'You said: '\n"
        "    yield messages[-1]['content']\n"
        f"tuneback.launch(reply, feedback='thumbs,stars', port={port}, "
        f"database_url='sqlite:///{tmp_path / 'launch.db'}')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "launch did not start serving"
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            assert client.get("/").status_code == 200
            open_pages_sync(client)
            streamed = client.post("/ui/chat", json={"content": "hi there"}).text
            assert "You said: " in streamed
            assert '"status": "ok"' in streamed
            state = client.get("/ui/state").json()
            assert state["settings"]["feedback"] == ["thumbs", "stars"]
            assert state["models"][0]["spec"].endswith(":reply")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert f"tuneback chat: http://127.0.0.1:{port}/" in output


def test_launch_keeps_the_dashboard_on_a_port_of_its_own(tmp_path: Path) -> None:
    port, dashboard_port = _free_port(), _free_port()
    script = (
        "import tuneback\n"
        f"tuneback.launch('echo', pages=('chat',), dashboard_port={dashboard_port}, port={port}, "
        f"database_url='sqlite:///{tmp_path / 'launch.db'}')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    chat, owner = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}"
    try:
        for base in (chat, owner):
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "launch did not start serving"
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        answers = {
            (name, path): httpx.get(f"{base}{path}").status_code
            for name, base in (("chat", chat), ("owner", owner))
            for path in ("/", "/dashboard", "/review")
        }
        # The runs logged on the chat's port are the dashboard's: one store.
        with httpx.Client(base_url=chat) as client:
            open_pages_sync(client)
            assert '"status": "ok"' in client.post("/ui/chat", json={"content": "hi"}).text
        numbers = httpx.get(f"{owner}/dashboard?format=json").json()
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert answers == {
        ("chat", "/"): 200,
        ("chat", "/dashboard"): 404,
        ("chat", "/review"): 404,
        ("owner", "/"): 404,
        ("owner", "/dashboard"): 200,
        ("owner", "/review"): 200,
    }
    assert numbers["summary"]["runs"] == 1
    assert f"tuneback chat: {chat}/" in output
    assert f"tuneback dashboard: {owner}/dashboard" in output
