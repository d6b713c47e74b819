"""The integrations' docs run as written: each page's Python blocks, in order, in one
namespace, against a real tuneback server and the loopback OpenAI-compatible server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.client.conftest import Sdk
from tests.client.servers import serving
from tests.models.openai_server import FakeOpenAIServer
from tuneback import Client
from tuneback.integrations import streamlit as tb_st

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks(path: Path, start: str = "", end: str = "") -> list[str]:
    text = path.read_text()
    if start:
        text = text[text.index(start) : text.index(end)]
    return BLOCK.findall(text)


@pytest.mark.parametrize(
    ("page", "start", "end", "count"),
    [
        ("docs/integrations.md", "", "", 6),
        ("README.md", "### From an OpenAI client", "## Read the dashboard", 3),
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
        namespace: dict[str, object] = {}
        for block in code:
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
