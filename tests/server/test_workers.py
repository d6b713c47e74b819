"""``tuneback serve --workers N``: several processes on one PostgreSQL database behave as one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tuneback.storage import Store

ROOT = Path(__file__).resolve().parents[2]
TUNEBACK = str(Path(sys.executable).with_name("tuneback"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(database_url: str, dialect: str) -> Iterator[str]:
    if dialect != "postgresql":
        pytest.skip("several workers need PostgreSQL (SQLite is refused, tested below)")
    Store(database_url).close()  # migrated once, before the workers start
    port = _free_port()
    proc = subprocess.Popen(
        [
            TUNEBACK,
            "serve",
            "--workers",
            "2",
            "--model",
            "echo",
            "--no-auth",
            "--port",
            str(port),
            "--database-url",
            database_url,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        processes: set[int] = set()
        # Both workers are up once two different processes have answered.
        while len(processes) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with httpx.Client(base_url=base) as fresh:
                    processes.add(fresh.get("/healthz").json()["process"])
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _on_new_connection(base: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    # A new connection each time, so the kernel spreads requests over the workers.
    with httpx.Client(base_url=base, timeout=30) as client:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_two_workers_serving_one_project_behave_as_one(served: str, database_url: str) -> None:
    answered_by: set[int] = set()
    runs: list[tuple[str, str]] = []
    for i in range(40):
        reply = _on_new_connection(
            served,
            "POST",
            "/v1/chat/completions",
            json={"model": "echo", "messages": [{"role": "user", "content": f"q{i}"}]},
        )
        assert reply.status_code == 200, reply.text
        runs.append((reply.headers["x-tuneback-run-id"], reply.headers["x-tuneback-feedback-url"]))
        answered_by.add(_on_new_connection(served, "GET", "/healthz").json()["process"])
    assert len(answered_by) == 2

    # A feedback link signed by one worker is honoured by whichever one gets it.
    for n, (_, url) in enumerate(runs):
        rated = _on_new_connection(served, "POST", url, json={"value": "up", "user": f"u{n}"})
        assert rated.status_code == 201, rated.text

    # A rule changed through one worker holds on the other within a second.
    configured = _on_new_connection(
        served,
        "PUT",
        "/api/v1/feedback-configs/quality",
        json={"config": {"type": "continuous", "min": 0, "max": 10}},
    )
    assert configured.status_code == 200, configured.text
    time.sleep(1.1)
    run_id = runs[0][0]
    for _ in range(6):
        refused = _on_new_connection(
            served,
            "POST",
            "/api/v1/feedback",
            json={"run_id": run_id, "key": "quality", "value": 11, "user": "ann"},
        )
        assert refused.status_code == 422, refused.text

    # Every write landed once, in one gapless log.
    with Store(database_url) as store:
        events = store.events_after(0, limit=10_000)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert len({e.id for e in events}) == len(events)
        assert store.info()["rows"]["runs"] == 40
        ratings = store.events_after(0, limit=10_000, types=["feedback.recorded"])
        rated_runs = [e.payload.feedback.run_id for e in ratings]  # type: ignore[attr-defined]
        assert sorted(rated_runs) == sorted(r for r, _ in runs)


def test_several_workers_on_sqlite_are_refused_with_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            TUNEBACK,
            "serve",
            "--workers",
            "2",
            "--model",
            "echo",
            "--database-url",
            f"sqlite:///{tmp_path / 'one.db'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --workers 2 needs PostgreSQL: SQLite takes one writer at a time, so several "
        "processes would only queue on its file lock. Serve one process (it commits concurrent "
        "requests together), or set TUNEBACK_DATABASE_URL=postgresql://user@host/db"
    )
