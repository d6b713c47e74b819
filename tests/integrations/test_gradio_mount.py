"""``tuneback serve --gradio``: a Gradio app served inside tuneback's own server, with auth
on, driven with gradio_client over HTTP; its runs and ratings land in the same database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from gradio_client import Client as GradioClient
from playwright.sync_api import sync_playwright

from tests.client.servers import free_port
from tests.integrations.test_gradio_blocks import BlocksChat
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tuneback.integrations.gradio import text_of
from tuneback.server.slow_clients import GRACEFUL_SHUTDOWN_SECONDS
from tuneback.services.keys import KeyService
from tuneback.storage import Store

ROOT = Path(__file__).resolve().parents[2]
TUNEBACK = str(Path(sys.executable).with_name("tuneback"))


@contextmanager
def serving_with_gradio(database_url: str, *options: str) -> Iterator[str]:
    """``tuneback serve --gradio ...`` on a free port until the block ends (then Ctrl-C)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TUNEBACK_"))}
    proc = subprocess.Popen(
        [
            TUNEBACK,
            "serve",
            "-m",
            "echo",
            "--port",
            str(port),
            "--database-url",
            database_url,
            *options,
        ],
        cwd=ROOT,
        env={**clean, "GRADIO_ANALYTICS_ENABLED": "False"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_a_mounted_gradio_blocks_app_logs_into_the_server_it_runs_in(store_url_only: str) -> None:
    with serving_with_gradio(
        store_url_only, "--gradio", "examples/gradio_blocks.py:demo", "--gradio-path", "/talk"
    ) as base:
        page = httpx.get(f"{base}/talk/")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
        # tuneback's own pages keep their strict policy.
        assert (
            "script-src 'self'" in httpx.get(f"{base}/healthz").headers["content-security-policy"]
        )
        # The API still wants a key: the mounted app logs with one made for it.
        assert httpx.get(f"{base}/api/v1/runs").status_code == 401
        chat = BlocksChat(GradioClient(f"{base}/talk/", verbose=False), add="/add_message")
        turn = chat.ask("Hi")
        chat.like(1, liked=True)
        with Store(store_url_only) as store:
            deadline = time.monotonic() + 20
            while not store.feedback_for_run(turn.run_id):
                assert time.monotonic() < deadline, "the rating did not arrive"
                time.sleep(0.1)
            [key] = KeyService(store).list("default")
            assert (key.name, key.role, key.active) == (
                "gradio app (tuneback serve --gradio)",
                "user",
                True,
            )
            told_to_stop = time.monotonic()
    # The client's heartbeat stream is still open: it is ended, not waited out for
    # the server's whole graceful-shutdown timeout.
    assert time.monotonic() - told_to_stop < GRACEFUL_SHUTDOWN_SECONDS / 2
    assert [text_of(m["content"]) for m in chat.messages] == ["Hi", "You said: Hi"]
    with Store(store_url_only) as store:
        # The key lived as long as the server.
        assert [k.active for k in KeyService(store).list("default")] == [False]
        [run] = store.list_runs("default")
        assert (run.id, run.output, run.model, run.status) == (
            turn.run_id,
            "You said: Hi",
            "echo",
            "ok",
        )
        assert [(f.key, f.score) for f in store.feedback_for_run(run.id)] == [("thumbs", 1.0)]
        messages = store.conversation_messages(turn.conversation_id or "")
        assert [(m.role, m.content) for m in messages] == [
            ("user", "Hi"),
            ("assistant", "You said: Hi"),
        ]


def test_what_the_app_sent_just_before_the_server_stops_is_stored(store_url_only: str) -> None:
    # The app's writes go over HTTP from a queue: a server told to stop takes
    # them in before it stops listening, so nothing rated at the last moment is lost.
    with serving_with_gradio(
        store_url_only, "--no-auth", "--gradio", "examples/gradio_blocks.py:demo"
    ) as base:
        chat = BlocksChat(GradioClient(f"{base}/gradio/", verbose=False), add="/add_message")
        turns = [chat.ask(f"question {n}") for n in range(4)]
        for index in (1, 3, 5, 7):
            chat.like(index, liked=index % 4 == 1)
    with Store(store_url_only) as store:
        rated = [[(f.key, f.score) for f in store.feedback_for_run(turn.run_id)] for turn in turns]
    assert rated == [[("thumbs", 1.0)], [("thumbs", 0.0)], [("thumbs", 1.0)], [("thumbs", 0.0)]]


def test_an_app_that_is_not_there_or_a_taken_path_is_one_clear_line(store_url_only: str) -> None:
    def refused(*options: str) -> str:
        done = subprocess.run(
            [
                TUNEBACK,
                "serve",
                "--port",
                str(free_port()),
                "--database-url",
                store_url_only,
                *options,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        return done.stderr.strip().splitlines()[-1]

    assert refused("--gradio", "examples/gradio_blocks.py:chat") == (
        "error: --gradio 'examples/gradio_blocks.py:chat': chat in examples/gradio_blocks.py "
        "is nothing, not a gr.Blocks or gr.ChatInterface"
    )
    assert refused("--gradio", "examples/missing.py:demo") == (
        "error: --gradio 'examples/missing.py:demo': there is no file examples/missing.py"
    )
    assert refused("--gradio", "examples/gradio_blocks.py:demo", "--gradio-path", "/api") == (
        "error: --gradio-path /api is taken by tuneback's own /api/v1/runs: choose another"
    )
    with Store(store_url_only) as store:
        # A key made for an app that could not be served is revoked at once.
        assert [k.active for k in KeyService(store).list("default")] == [False, False]


def test_the_mounted_chat_works_in_a_browser(store_url_only: str) -> None:
    with (
        serving_with_gradio(store_url_only, "--gradio", "examples/gradio_blocks.py:demo") as base,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/gradio/")
        box = page.get_by_placeholder("Ask something")
        box.fill("Hello from a browser")
        box.press("Enter")
        page.get_by_text("You said: Hello from a browser").wait_for(timeout=60_000)
        page.get_by_role("button", name="Like").last.click()
        with Store(store_url_only) as store:
            deadline = time.monotonic() + 30
            while not (runs := store.list_runs("default")) or not store.feedback_for_run(
                runs[0].id
            ):
                assert time.monotonic() < deadline, "the rating did not arrive"
                time.sleep(0.2)
            [run] = runs
            assert (run.output, run.status) == ("You said: Hello from a browser", "ok")
            assert [(f.key, f.score, f.source) for f in store.feedback_for_run(run.id)] == [
                ("thumbs", 1.0, "end_user")
            ]
        browser.close()
    assert errors == []
