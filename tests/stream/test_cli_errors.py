"""Streaming commands refuse a mistake with one line and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stream.conftest import NATS_URL, nats_reachable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["relay", "--once"], "error: no NATS server: set TUNEBACK_NATS_URL="),
        (
            ["relay", "--once", "--nats-url", "http://x"],
            "error: TUNEBACK_NATS_URL: 'http://x' is not a NATS address like nats://",
        ),
        (
            ["events", "--from", "nats://127.0.0.1:1"],
            "error: cannot reach NATS at nats://127.0.0.1:1:",
        ),
        (
            ["relay", "--once", "--nats-url", "nats://127.0.0.1:4222", "--stream", "a.b"],
            "error: TUNEBACK_NATS_STREAM: 'a.b' must be one word",
        ),
    ],
)
def test_a_streaming_mistake_prints_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBACK_NATS")}
    proc = subprocess.run(
        [sys.executable, "-m", "tuneback", *args, "-d", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(message)


def test_rebuilding_from_a_stream_that_does_not_exist_says_so(tmp_path: Path) -> None:
    reason = nats_reachable()
    if reason is not None:
        pytest.skip(reason)
    command = [sys.executable, "-m", "tuneback", "db", "rebuild", "--from", NATS_URL]
    proc = subprocess.run(
        [*command, "--stream", "NO_SUCH_STREAM_X1", "-d", f"sqlite:///{tmp_path / 'copy.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        f"error: no stream NO_SUCH_STREAM_X1 on {NATS_URL} (run tuneback relay to create it)"
    )
