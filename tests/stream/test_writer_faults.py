"""Faults on the writer side while the relay runs inside ``tuneback serve --workers 2``.

A PostgreSQL server of the test's own (so restarting it disturbs nobody), two
server workers relaying to NATS, and four clients logging runs with their own
ids, retrying until acknowledged. Mid-load a worker is killed with SIGKILL and
PostgreSQL is restarted in immediate mode (a crash). Afterwards every
acknowledged run is in the store once and in JetStream once, in order.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.stream.test_faults import check_stream_holds_the_log, wait_until
from tuneback.storage import Store
from tuneback.stream import StreamTarget

ROOT = Path(__file__).resolve().parents[2]
TUNEBACK = str(Path(sys.executable).with_name("tuneback"))
CLIENTS = 4
PER_CLIENT = 150


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Callable[[], None]]]:
    """(URL, restart) of a PostgreSQL server made for this test; restart is a crash restart."""
    initdb, pg_ctl, runuser = (shutil.which(n) for n in ("initdb", "pg_ctl", "runuser"))
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        account = None
    if not (initdb and pg_ctl and runuser and account) or os.geteuid() != 0:
        pytest.skip("needs initdb, pg_ctl and root to run a PostgreSQL of its own as postgres")
    home = Path(tempfile.mkdtemp(prefix="tuneback-pg-"))
    os.chown(home, account.pw_uid, account.pw_gid)
    data, port = home / "data", free_port()
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"

    def as_postgres(*command: str) -> None:
        subprocess.run(
            [runuser, "-u", "postgres", "--", *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    as_postgres(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    log = str(home / "log")
    as_postgres(pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start")

    def restart() -> None:
        as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        time.sleep(1.0)
        as_postgres(pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start")

    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        subprocess.run(
            [runuser, "-u", "postgres", "--", pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        shutil.rmtree(home, ignore_errors=True)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def log_runs(
    base: str, client: int, acked: list[str], retried: list[str], stop: threading.Event
) -> None:
    """Log runs with our own ids; retry each until acknowledged (the id makes it safe)."""
    with httpx.Client(base_url=base, timeout=10) as http:
        for i in range(PER_CLIENT):
            run_id = f"c{client}-{i}"
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    reply = http.post(
                        "/api/v1/runs",
                        json={"id": run_id, "project": "load", "output": f"answer {i}"},
                    )
                except httpx.TransportError:
                    retried.append(run_id)
                    time.sleep(0.1)
                    continue
                if reply.status_code in (200, 201):
                    acked.append(run_id)
                    break
                retried.append(run_id)
                time.sleep(0.1)


@pytest.mark.slow
def test_worker_killed_and_postgres_restarted_every_acknowledged_write_once_in_store_and_stream(
    own_postgres: tuple[str, Callable[[], None]], stream_target: StreamTarget
) -> None:
    url, restart_postgres = own_postgres
    Store(url).close()
    port = free_port()
    env = {
        **os.environ,
        "TUNEBACK_NATS_URL": stream_target.url,
        "TUNEBACK_NATS_STREAM": stream_target.stream,
        "TUNEBACK_NATS_SUBJECT": stream_target.prefix,
        "TUNEBACK_RATE_LIMIT": "off",
    }
    serve = [TUNEBACK, "serve", "--workers", "2", "--model", "echo", "--no-auth"]
    server = subprocess.Popen(
        [*serve, "--port", str(port), "--database-url", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    retried: list[str] = []
    stop = threading.Event()
    clients = [
        threading.Thread(target=log_runs, args=(base, n, acked, retried, stop))
        for n in range(CLIENTS)
    ]
    try:

        def both_workers_up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200 and (
                    len(children(server.pid)) >= 2
                )
            except httpx.TransportError:
                return False

        wait_until(both_workers_up, 60, "the server")
        for client in clients:
            client.start()
        wait_until(lambda: len(acked) >= 100, 60, "the first writes")
        os.kill(children(server.pid)[0], signal.SIGKILL)
        wait_until(lambda: len(acked) >= 250, 60, "writes after the kill")
        restart_postgres()
        for client in clients:
            client.join(timeout=120)
        assert len(acked) == CLIENTS * PER_CLIENT
        assert retried, "the faults were never felt: no write had to be retried"
        with Store(url) as store:
            total = store.last_seq()
            name = stream_target.relay_name
            wait_until(lambda: store.relay_position(name) == total, 60, "the relay")
            ids = [event.id for event in store.events_after(0, 100_000)]
            assert sorted(ids) == sorted(set(acked))
            check_stream_holds_the_log(store, stream_target)
    finally:
        stop.set()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
