"""On SQLite, an event loop commits its coroutines' writes in its own thread.

What the loop's coroutines submit while it runs its ready callbacks is one group,
committed right after them on a connection of its own that never waits for the
write lock: when another connection holds it, the group goes to the writer thread,
which waits, and the loop goes on serving.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from tuneback.domain import Run, RunCompleted
from tuneback.errors import ConflictError
from tuneback.storage import Store
from tuneback.storage.commit import GroupCommit
from tuneback.storage.engine import Database
from tuneback.storage.writer import CHECKPOINT_AFTER, WriteRequest


@pytest.fixture
def dialect() -> str:
    """SQLite only: PostgreSQL's writes stay on the writer thread (a round trip would block)."""
    return "sqlite"


def _run(run_id: str, output: str = "answer") -> RunCompleted:
    return RunCompleted(run=Run(id=run_id, project="p", output=output))


def _thread_names_of_commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the thread of every group commit from now on."""
    names: list[str] = []
    commit = GroupCommit.__call__

    def noting(self: GroupCommit, group: list[WriteRequest]) -> None:
        names.append(threading.current_thread().name)
        commit(self, group)

    monkeypatch.setattr(GroupCommit, "__call__", noting)
    return names


async def test_a_loops_writes_are_one_group_committed_in_its_own_thread(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _thread_names_of_commits(monkeypatch)
    stored = await asyncio.gather(
        *(store.append_async(_run(f"r{i}"), event_id=f"e{i}") for i in range(40))
    )
    assert [e.seq for e in stored] == list(range(1, 41))
    assert len({e.recorded_at for e in stored}) == 1  # one transaction
    assert threads == [threading.current_thread().name]


async def test_a_bad_item_in_an_inline_group_fails_alone(store: Store) -> None:
    await store.append_async(_run("taken"), event_id="taken")
    results = await asyncio.gather(
        store.append_async(_run("a"), event_id="ea"),
        store.append_async(_run("taken", output="something else"), event_id="taken"),
        store.append_async(_run("b"), event_id="eb"),
        store.append_async(_run("taken"), event_id="taken"),  # a true retry
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "StoredEvent",
        "ConflictError",
        "StoredEvent",
        "StoredEvent",
    ]
    assert isinstance(results[1], ConflictError)
    assert sorted(e.id for e in store.events_after(0)) == ["ea", "eb", "taken"]


async def test_while_another_connection_holds_the_lock_the_loop_keeps_serving(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append_async(_run("first"))  # the inline connection is open
    threads = _thread_names_of_commits(monkeypatch)
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        writes = [asyncio.ensure_future(store.append_async(_run(f"w{i}"))) for i in range(5)]
        # The loop turns while the writes wait for the lock (had it waited on the
        # lock itself, nothing would run until SQLite gave up, and the writes failed).
        for _ in range(10):
            await asyncio.sleep(0.02)
        assert not any(w.done() for w in writes)
    finally:
        holder.execute("COMMIT")
        holder.close()
    stored = await asyncio.wait_for(asyncio.gather(*writes), timeout=30)
    assert sorted(e.seq for e in stored) == list(range(2, 7))
    # Tried in the loop's thread, found the lock taken, committed by the writer thread.
    assert threads == [threading.current_thread().name, "tuneback-writer"]
    assert store.info()["rows"]["runs"] == 6


async def test_a_command_writing_meanwhile_interleaves_with_the_loops_writes(
    store_url_only: str,
) -> None:
    with Store(store_url_only) as served, Store(store_url_only) as command:
        done = threading.Event()

        def write_from_a_command() -> None:
            for i in range(60):
                command.append(_run(f"c{i}"))
            done.set()

        thread = threading.Thread(target=write_from_a_command)
        thread.start()
        for i in range(30):
            await asyncio.gather(*(served.append_async(_run(f"s{i}-{j}")) for j in range(4)))
        await asyncio.to_thread(thread.join, 60)
        assert done.is_set()
        seqs = [e.seq for e in served.events_after(0, limit=1_000)]
        assert seqs == list(range(1, 181))
        assert served.info()["rows"]["runs"] == 180


async def test_the_writer_thread_checkpoints_what_inline_commits_wrote(
    store_url_only: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints: list[str] = []
    checkpoint = Database.checkpoint

    def noting(self: Database) -> None:
        checkpoints.append(threading.current_thread().name)
        checkpoint(self)

    monkeypatch.setattr(Database, "checkpoint", noting)
    with Store(store_url_only) as store:
        for i in range(CHECKPOINT_AFTER - 1):
            await store.append_async(_run(f"r{i}"))
        assert checkpoints == []
        await store.append_async(_run("last"))
        for _ in range(500):
            if checkpoints:
                break
            await asyncio.sleep(0.01)
        assert checkpoints == ["tuneback-writer"]
