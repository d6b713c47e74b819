"""Faults around the relay: it is killed mid-publish, NATS restarts, four processes write.

Writers are separate processes (``tests.storage.writer``), and so is the relay
(``tuneback relay``), so SIGKILL hits it wherever it is: between publishing a
page and storing its position, or in the middle of a page. Afterwards a
JetStream consumer must see every event exactly once, in ``seq`` order.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.stream.conftest import stream_messages
from tuneback.storage import Store
from tuneback.stream import StreamTarget

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
PER_WRITER = 400


def start_writer(url: str, count: int, prefix: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.writer", url, str(count), prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def start_relay(url: str, target: StreamTarget) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tuneback", "relay", "--batch", "50", "--interval", "0.01"]
    command += ["--nats-url", target.url, "--stream", target.stream, "--subject", target.prefix]
    return subprocess.Popen(
        [*command, "-d", url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], how: int = signal.SIGTERM) -> str:
    if proc.poll() is None:
        proc.send_signal(how)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def acknowledged(writers: list[subprocess.Popen[str]]) -> set[str]:
    """The ids each writer printed once acknowledged; waits (bounded) for them to finish."""
    ids: set[str] = set()
    with ThreadPoolExecutor() as pool:
        # Read through the same buffered reader that read "ready": it may hold ids already.
        outputs = [pool.submit(proc.stdout.read) for proc in writers if proc.stdout]
        for proc, output in zip(writers, outputs, strict=True):
            ids.update(output.result(timeout=120).split())
            assert proc.wait(timeout=10) == 0
    return ids


def check_stream_holds_the_log(store: Store, target: StreamTarget) -> None:
    log = store.events_after(0, 100_000)
    messages = asyncio.run(stream_messages(target))
    assert [msg_id for _, msg_id, _ in messages] == [event.id for event in log]
    assert len({msg_id for _, msg_id, _ in messages}) == len(messages)


def test_relay_killed_mid_publish_loses_nothing_and_repeats_nothing(
    store: Store, database_url: str, stream_target: StreamTarget
) -> None:
    relay = start_relay(database_url, stream_target)
    writers = [start_writer(database_url, PER_WRITER, f"w{n}-") for n in range(WRITERS)]
    try:
        name = stream_target.relay_name
        for kill_after in (200, 700):
            wait_until(lambda: store.relay_position(name) >= kill_after, 30, "the relay")  # noqa: B023
            stop(relay, signal.SIGKILL)
            relay = start_relay(database_url, stream_target)
        acked = acknowledged(writers)
        assert len(acked) == WRITERS * PER_WRITER
        total = store.last_seq()
        wait_until(lambda: store.relay_position(name) == total, 30, "the relay to catch up")
    finally:
        for proc in writers:
            stop(proc, signal.SIGKILL) if proc.poll() is None else None
        report = stop(relay)
    assert "published" in report, report
    check_stream_holds_the_log(store, stream_target)
    assert acked <= {event.id for event in store.events_after(0, 100_000)}


@pytest.fixture
def own_nats(tmp_path: Path, stream_target: StreamTarget) -> Iterator[Callable[[str], None]]:
    """A NATS server of this test's own on a free port, which the test may restart.

    Yields ``control("stop")`` / ``control("start")``; the target points at it.
    """
    binary = shutil.which("nats-server")
    if binary is None:
        pytest.skip("nats-server is not installed (needed to restart NATS mid-load)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js")]
    procs: list[subprocess.Popen[bytes]] = []

    def control(action: str) -> None:
        if action == "stop":
            procs[-1].send_signal(signal.SIGKILL)
            procs[-1].wait(10)
            return
        procs.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    return True
            except OSError:
                return False

        wait_until(listening, 10, "nats-server to listen")

    control("start")
    shared_url = stream_target.url
    object.__setattr__(stream_target, "url", f"nats://127.0.0.1:{port}")
    try:
        yield control
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        # The stream lived on this server only: nothing to delete on the shared one.
        object.__setattr__(stream_target, "url", shared_url)


def test_nats_restarted_mid_load_the_relay_waits_and_catches_up(
    store: Store,
    database_url: str,
    stream_target: StreamTarget,
    own_nats: Callable[[str], None],
) -> None:
    relay = start_relay(database_url, stream_target)
    writers = [start_writer(database_url, PER_WRITER, f"n{n}-") for n in range(2)]
    name = stream_target.relay_name
    try:
        wait_until(lambda: store.relay_position(name) >= 200, 30, "the relay")
        own_nats("stop")
        stalled = store.relay_position(name)
        time.sleep(1.0)
        assert store.relay_position(name) <= stalled + 50, "the relay moved on without NATS"
        own_nats("start")
        acked = acknowledged(writers)
        total = store.last_seq()
        wait_until(lambda: store.relay_position(name) == total, 45, "the relay to catch up")
    finally:
        for proc in writers:
            if proc.poll() is None:
                stop(proc, signal.SIGKILL)
        stop(relay)
    check_stream_holds_the_log(store, stream_target)
    assert acked <= {event.id for event in store.events_after(0, 100_000)}


def test_two_relay_processes_one_publishes_and_the_other_takes_over_when_it_dies(
    store: Store, database_url: str, stream_target: StreamTarget
) -> None:
    first = start_relay(database_url, stream_target)
    name = stream_target.relay_name
    writer = start_writer(database_url, 1_000, "t-")
    second = None
    try:
        wait_until(lambda: store.relay_position(name) >= 100, 30, "the first relay")
        second = start_relay(database_url, stream_target)
        assert second.stderr is not None
        # The second waits for the lease; the first keeps publishing.
        assert "waiting to take over" in second.stderr.readline() + second.stderr.readline()
        stop(first, signal.SIGKILL)
        acked = acknowledged([writer])
        total = store.last_seq()
        wait_until(lambda: store.relay_position(name) == total, 30, "the second relay")
    finally:
        if writer.poll() is None:
            stop(writer, signal.SIGKILL)
        stop(first, signal.SIGKILL)
        report = stop(second) if second is not None else ""
    assert "published" in report, report
    check_stream_holds_the_log(store, stream_target)
    assert len(acked) == 1_000
