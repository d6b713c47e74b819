"""Many writers at once, a follower reading while they write, and a writer killed mid-load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.storage.snapshot import projection_snapshot
from tests.storage.writer import append_run
from tuneback.domain import Run, RunCompleted, StoredEvent
from tuneback.storage import Store

THREADS = 8
PROCESSES = 4
PER_WRITER = 500
ROOT = Path(__file__).resolve().parents[2]


def _write(store: Store, prefix: str, count: int, acked: list[str]) -> None:
    try:
        for i in range(count):
            acked.append(append_run(store, prefix, i).id)
    except Exception as exc:  # the test reports it: a thread's error would be lost
        acked.append(f"failed: {exc!r}")


def _start_writer(url: str, count: int, prefix: str, threads: int = 1) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.writer", url, str(count), prefix, str(threads)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _follow(store: Store, stop: threading.Event, seen: list[StoredEvent]) -> None:
    after = 0
    while True:
        done = stop.is_set()  # read before polling, so the last poll follows the last write
        page = store.events_after(after, limit=500)
        seen.extend(page)
        if page:
            after = page[-1].seq
        elif done:
            return
        else:
            time.sleep(0.002)


@pytest.mark.slow
def test_concurrent_writers_store_every_event_once_and_a_follower_misses_none(
    store: Store, database_url: str, dialect: str
) -> None:
    acked: dict[str, list[str]] = {f"t{n}": [] for n in range(THREADS)}
    stop = threading.Event()
    followed: list[StoredEvent] = []
    follower = threading.Thread(target=_follow, args=(store, stop, followed))
    follower.start()
    # Four more processes, each with its own store, writer and connections.
    processes = [_start_writer(database_url, PER_WRITER, f"p{n}") for n in range(PROCESSES)]
    threads = [
        threading.Thread(target=_write, args=(store, prefix, PER_WRITER, ids))
        for prefix, ids in acked.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, proc in enumerate(processes):
        # Read on through the reader that read "ready", which may hold the first ids
        # already (communicate() with a timeout reads the pipe itself and would drop
        # them); a writer that hangs is killed, which ends the read.
        assert proc.stdout is not None
        watchdog = threading.Timer(600, proc.kill)
        watchdog.start()
        try:
            out = proc.stdout.read()
        finally:
            watchdog.cancel()
        assert proc.wait() == 0
        acked[f"p{n}"] = out.split()
    stop.set()
    follower.join()

    total = (THREADS + PROCESSES) * PER_WRITER
    every_ack = [event_id for ids in acked.values() for event_id in ids]
    assert [a for a in every_ack if a.startswith("failed")] == []
    # Every writer acknowledged all it wrote (named, if one did not).
    assert {prefix: len(ids) for prefix, ids in acked.items() if len(ids) != PER_WRITER} == {}
    assert len(every_ack) == len(set(every_ack)) == total
    log = store.events_after(0, limit=total + 10)
    # Gapless and in commit order, whichever process wrote.
    assert [e.seq for e in log] == list(range(1, total + 1))
    assert {e.id for e in log} == set(every_ack)
    # The follower saw the log exactly as it is, in order, with nothing skipped
    # or seen twice.
    assert [e.seq for e in followed] == list(range(1, total + 1))
    assert store.info()["rows"]["runs"] == total
    for prefix in acked:
        # Each writer's own events are in the log in the order it wrote them.
        mine = [e.payload.run.id for e in log if e.payload.run.id.startswith(f"{prefix}-")]  # type: ignore[attr-defined]
        assert mine == [f"{prefix}-{i}" for i in range(PER_WRITER)]


@pytest.mark.slow
def test_a_writer_killed_mid_load_loses_nothing_it_acknowledged(
    store: Store, database_url: str
) -> None:
    # Eight threads in the process, so it dies in the middle of group commits.
    proc = _start_writer(database_url, 100_000, "k", threads=8)
    assert proc.stdout is not None
    acked = [proc.stdout.readline().strip() for _ in range(300)]
    os.kill(proc.pid, signal.SIGKILL)
    acked += proc.stdout.read().split()  # anything it printed before it died
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with Store(database_url) as reopened:
        log = reopened.events_after(0, limit=1_000_000)
        stored_ids = [e.id for e in log]
        assert set(acked) <= set(stored_ids)
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        # Nothing half-written: every event has its projection row, and replay agrees.
        assert reopened.info()["rows"]["runs"] == len(log)
        before = projection_snapshot(reopened)
        reopened.rebuild()
        assert projection_snapshot(reopened) == before
        # And the store takes writes again.
        run = Run(project="load", output="after the crash")
        assert reopened.append(RunCompleted(run=run)).seq == len(log) + 1
