"""``tuneback serve -m NAME=SPEC … --arena`` and ``tuneback.launch(a, b, feedback="rank")``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.visitors import open_pages_sync
from tests.web.conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]
TUNEBACK = str(Path(sys.executable).with_name("tuneback"))


def shout(messages: list[dict[str, str]]) -> str:
    """A second offline model for the arena: the question in capitals."""
    return messages[-1]["content"].upper()


def _wait_until_serving(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)


def _events(text: str) -> list[tuple[str, dict[str, object]]]:
    found = []
    for block in text.strip().split("\n\n"):
        event, data = block.split("\n", 1)
        found.append((event.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return found


def _battle_and_vote(client: httpx.Client) -> dict[str, object]:
    """An anonymous battle between the two models, then a vote: what the vote revealed."""
    streamed = _events(client.post("/ui/compare", json={"content": "hi there"}).text)
    names = [event for event, _ in streamed]
    assert (names[0], names[-1], names.count("side")) == ("start", "done", 2)
    start = streamed[0][1]
    assert [side["model"] for side in start["sides"]] == [None, None]  # type: ignore[index]
    voted = client.post(f"/ui/compare/{start['round_id']}/vote", json={"outcome": "tie"}).json()
    return {
        "mode": voted["mode"],
        "outcome": voted["vote"]["outcome"],
        "answers": sorted(side["html"] for side in voted["sides"]),
        "models": sorted(side["run"]["model"] for side in voted["sides"]),
    }


@pytest.fixture
def arena_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            TUNEBACK,
            "serve",
            "-m",
            "a=echo",
            "-m",
            "b=python:tests.cli.test_serve_arena:shout",
            "--arena",
            "--no-auth",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{tmp_path / 'arena.db'}",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_until_serving(proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_arena_lands_on_the_compare_page(
    arena_server: tuple[str, subprocess.Popen[str]],
) -> None:
    base, proc = arena_server
    with httpx.Client(base_url=base) as client:
        open_pages_sync(client)
        landing = client.get("/")
        assert (landing.status_code, landing.headers["location"]) == (307, "/compare")
        chat = client.get("/?chat")
        assert chat.status_code == 200
        assert '<a class="new-chat" href="/?chat" id="new-chat">' in chat.text
        compare = client.get("/compare", headers={"accept": "text/html"}).text
        assert '<a href="/?chat">Chat</a>' in compare
        page = client.get("/compare?format=json").json()
        assert [(m["spec"], m["name"]) for m in page["models"]] == [
            ("echo", "a"),
            ("python:tests.cli.test_serve_arena:shout", "b"),
        ]
        assert _battle_and_vote(client) == {
            "mode": "anonymous",
            "outcome": "tie",
            "answers": ["<p>HI THERE</p>\n", "<p>hi there</p>\n"],
            "models": ["echo", "python:tests.cli.test_serve_arena:shout"],
        }
    proc.terminate()
    _, errors = proc.communicate(timeout=30)
    assert f"open {base}/compare" in errors


def test_feedback_rank_is_the_arena_too() -> None:
    done = subprocess.run(
        [TUNEBACK, "serve", "--feedback", "rank", "--pages", "review", "-m", "echo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "error: --arena (or --feedback rank) opens the compare page, which comes with the chat: "
        "add chat to --pages",
    )


def test_arena_needs_the_chat_pages() -> None:
    done = subprocess.run(
        [TUNEBACK, "serve", "--arena", "--pages", "dashboard", "-m", "echo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "error: --arena (or --feedback rank) opens the compare page, which comes with the chat: "
        "add chat to --pages",
    )


def test_launch_with_feedback_rank_opens_the_compare_page(tmp_path: Path) -> None:
    port = _free_port()
    script = (
        "import tuneback\n"
        "def polite(messages):\n"
        "    return 'Please: ' + messages[-1]['content']\n"
        "def blunt(messages):\n"
        "    return messages[-1]['content'] + '!'\n"
        f"tuneback.launch(polite, blunt, feedback='rank', port={port}, "
        f"database_url='sqlite:///{tmp_path / 'launch.db'}')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(proc, base)
        with httpx.Client(base_url=base) as client:
            open_pages_sync(client)
            assert client.get("/").headers["location"] == "/compare"
            voted = _battle_and_vote(client)
        assert voted["answers"] == ["<p>Please: hi there</p>\n", "<p>hi there!</p>\n"]
        assert [m.rsplit(":", 1)[1] for m in voted["models"]] == ["blunt", "polite"]  # type: ignore[attr-defined]
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert f"tuneback compare: http://127.0.0.1:{port}/compare" in output
