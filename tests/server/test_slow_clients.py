"""``tuneback serve`` closes idle and slow connections and caps how many it holds.

A real server on loopback (SQLite), reached through raw sockets so a test can
be exactly as slow as a slowloris client.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tuneback.server.slow_clients import (
    GRACEFUL_SHUTDOWN_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_CONNECTIONS,
    HeaderTimeoutProtocol,
    ServerLimits,
)

ROOT = Path(__file__).resolve().parents[2]
TUNEBACK = str(Path(sys.executable).with_name("tuneback"))
KEEP_ALIVE = 1
HEADER_TIMEOUT = 1.5
MAX = 12
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = _free_port()
    database = tmp_path_factory.mktemp("slow") / "tuneback.db"
    proc = subprocess.Popen(
        [
            TUNEBACK,
            "serve",
            "--model",
            "echo",
            "--no-auth",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{database}",
            "--keep-alive",
            str(KEEP_ALIVE),
            "--header-timeout",
            str(HEADER_TIMEOUT),
            "--max-connections",
            str(MAX),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {proc.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=10)


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """One whole response (status and body) read off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body


def _seconds_until_closed(sock: socket.socket) -> float:
    started = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_an_idle_keep_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        sock.sendall(REQUEST)
        assert _response(sock)[0] == 200
        waited = _seconds_until_closed(sock)
    assert KEEP_ALIVE - 0.2 < waited < KEEP_ALIVE + 2


def test_a_connection_that_sends_nothing_is_closed(server: tuple[str, int]) -> None:
    with _connect(server) as sock:
        waited = _seconds_until_closed(sock)
    assert HEADER_TIMEOUT - 0.2 < waited < HEADER_TIMEOUT + 2


def test_headers_sent_a_byte_at_a_time_are_cut_off(server: tuple[str, int]) -> None:
    started = time.monotonic()
    with _connect(server) as sock:
        closed = False
        for byte in REQUEST[:-2]:  # never finishes the headers
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed
    assert HEADER_TIMEOUT - 0.2 < time.monotonic() - started < HEADER_TIMEOUT + 2


def test_requests_are_answered_while_slow_connections_are_held(server: tuple[str, int]) -> None:
    with ExitStack() as stack:
        for _ in range(MAX // 2):
            slow = stack.enter_context(_connect(server))
            slow.sendall(REQUEST[:10])
        for _ in range(5):
            with _connect(server) as sock:
                sock.sendall(REQUEST)
                status, body = _response(sock)
            assert status == 200, body


def test_beyond_the_connection_limit_requests_get_503_at_once(server: tuple[str, int]) -> None:
    with ExitStack() as stack:
        for _ in range(MAX):
            stack.enter_context(_connect(server)).sendall(REQUEST[:10])
        time.sleep(0.2)  # let the server accept every one of them
        with _connect(server) as sock:
            sock.sendall(REQUEST)
            status, _ = _response(sock)
        assert status == 503
    time.sleep(0.3)  # the held connections are closed: requests are answered again
    with _connect(server) as sock:
        sock.sendall(REQUEST)
        assert _response(sock)[0] == 200


def test_the_defaults_bound_every_connection() -> None:
    options = ServerLimits().uvicorn_options()
    assert options["http"].func is HeaderTimeoutProtocol
    assert options["http"].keywords == {"header_timeout": HEADER_TIMEOUT_SECONDS}
    assert {k: v for k, v in options.items() if k != "http"} == {
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": MAX_CONNECTIONS,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "h11_max_incomplete_event_size": 64 * 1024,
    }
