"""The examples run as a user runs them: a process talking to a real tuneback server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.client.conftest import Sdk
from tests.client.servers import serving
from tests.models.openai_server import FakeOpenAIServer

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
