"""The integrations' docs run as written: each page's Python blocks, in order, in one
namespace, against a real tuneback server and the loopback OpenAI-compatible server."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client as GradioClient
from streamlit.testing.v1 import AppTest

from tests.client.conftest import Sdk
from tests.client.servers import free_port, serving
from tests.integrations.test_gradio import Chat, trigger
from tests.integrations.test_gradio_blocks import BlocksChat
from tests.models.openai_server import FakeOpenAIServer
from tuneback import Client
from tuneback.integrations import streamlit as tb_st

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
LIKED = {"index": 1, "value": [{"type": "text", "text": "You said: Hi"}], "liked": True}


def blocks(path: Path, start: str = "", end: str = "") -> list[str]:
    text = path.read_text()
    if start:
        text = text[text.index(start) : text.index(end)]
    return BLOCK.findall(text)


@pytest.mark.parametrize(
    ("page", "start", "end", "count"),
    [
        ("docs/integrations.md", "", "", 9),
        ("README.md", "### From an OpenAI client", "## Read the dashboard", 4),
    ],
)
def test_the_examples_on_the_page_run(
    sdk: Sdk,
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    start: str,
    end: str,
    count: int,
) -> None:
    code = blocks(ROOT / page, start, end)
    assert len(code) == count
    with serving(sdk.app) as server:
        monkeypatch.setenv("TUNEBACK_URL", server.url)
        monkeypatch.setenv("TUNEBACK_API_KEY", sdk.key)
        monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        # Streamlit's blocks run as Streamlit runs them, with the process's client fresh.
        monkeypatch.setattr(tb_st, "_default", None)
        # Gradio's blocks launch on loopback without holding the thread, and are then
        # chatted with and rated through gradio_client.
        port = free_port()
        launch = gr.Blocks.launch
        monkeypatch.setattr(
            gr.Blocks,
            "launch",
            lambda self, **kw: launch(
                self,
                server_name="127.0.0.1",
                server_port=port,
                prevent_thread_lock=True,
                quiet=True,
            ),
        )
        namespace: dict[str, object] = {}
        for block in code:
            if "import gradio" in block:
                exec(compile(block, page, "exec"), namespace)
                demo = namespace["demo"]
                assert isinstance(demo, gr.Blocks)
                try:
                    gc = GradioClient(f"http://127.0.0.1:{port}/", verbose=False)
                    if isinstance(demo, gr.ChatInterface):
                        chat = Chat(gc, "/reply")
                        turn = chat.ask("Hi")
                        chat.event("like", 1, liked=True)
                    else:
                        blocks_chat = BlocksChat(gc)
                        turn = blocks_chat.ask("Hi")
                        trigger(gc, "/tuneback_like", blocks_chat.messages, event_data=LIKED)
                    assert demo.tuneback.flush(timeout=10)  # type: ignore[attr-defined]
                finally:
                    demo.close()
                assert sdk.store.get_run(turn.run_id).output == "You said: Hi"
                assert [f.score for f in sdk.store.feedback_for_run(turn.run_id)] == [1.0]
                continue
            if "import streamlit" in block:
                at = AppTest.from_string(block, default_timeout=30).run()
                assert not at.exception
                assert tb_st.default_client().flush(timeout=10)
                assert tb_st.default_client().stats.sent >= 1
                assert tb_st.default_client().stats.dropped == 0
                continue
            exec(compile(block, page, "exec"), namespace)
            # A block may replace the client the last one made: deliver its writes now.
            for value in list(namespace.values()):
                if isinstance(value, Client):
                    assert value.flush(timeout=10)
                    assert value.stats.dropped == 0
    runs = sdk.store.list_runs("demo")
    assert runs
    assert sdk.store.feedback_for_runs([r.id for r in runs])
