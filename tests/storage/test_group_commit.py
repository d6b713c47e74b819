"""The write path: group commit, failures that stay alone, retries, locked ratings."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tuneback.domain import (
    Feedback,
    FeedbackRecorded,
    ProjectConfigured,
    ProjectSettings,
    Run,
    RunCompleted,
)
from tuneback.errors import ConflictError, StorageError, ValidationError
from tuneback.services.feedback import FeedbackService
from tuneback.storage import NewEvent, Store
from tuneback.storage.commit import PreparedEvent
from tuneback.storage.log import prepare
from tuneback.storage.writer import GroupWriter, WriteRequest


def _run(run_id: str, project: str = "p", output: str = "answer") -> RunCompleted:
    return RunCompleted(run=Run(id=run_id, project=project, output=output))


async def test_concurrent_async_writers_share_commits_and_each_gets_its_own_event(
    store: Store,
) -> None:
    stored = await asyncio.gather(
        *(store.append_async(_run(f"r{i}"), event_id=f"e{i}") for i in range(300))
    )
    assert [e.id for e in stored] == [f"e{i}" for i in range(300)]
    log = store.events_after(0, limit=1_000)
    assert sorted(e.id for e in log) == sorted(f"e{i}" for i in range(300))
    assert [e.seq for e in log] == list(range(1, 301))
    assert store.info()["rows"]["runs"] == 300
    # Queued together, they were committed in far fewer transactions than
    # writes: events of one commit share their recorded_at.
    assert len({e.recorded_at for e in log}) < 300


def test_one_bad_item_in_a_group_fails_alone(store: Store) -> None:
    store.append(_run("taken"), event_id="taken")
    results = store.append_each(
        [
            NewEvent(_run("a"), "ea"),
            NewEvent(_run("taken", output="something else"), "taken"),  # same id, other run
            NewEvent(_run("b"), "eb"),
            NewEvent(_run("taken"), "taken"),  # a true retry
        ]
    )
    assert [type(r).__name__ for r in results] == [
        "StoredEvent",
        "ConflictError",
        "StoredEvent",
        "StoredEvent",
    ]
    assert sorted(e.id for e in store.events_after(0)) == ["ea", "eb", "taken"]


def test_items_that_stand_alone_are_committed_in_one_transaction(store: Store) -> None:
    results = store.append_each([NewEvent(_run(f"r{i}"), f"e{i}") for i in range(300)])
    assert [getattr(r, "id", r) for r in results] == [f"e{i}" for i in range(300)]
    # Queued at once, the writer takes them as one group: one commit time.
    assert len({e.recorded_at for e in store.events_after(0, limit=1_000)}) == 1


def test_an_item_refused_before_the_write_fails_alone(store: Store) -> None:
    unreadable = Run(id="bad", project="p", output="x", metadata={"ratio": float("nan")})
    results = store.append_each(
        [
            NewEvent(_run("a"), "ea"),
            NewEvent(RunCompleted(run=unreadable), "ebad"),
            NewEvent(_run("b"), "eb"),
        ]
    )
    assert isinstance(results[1], ValidationError)
    assert [getattr(r, "id", None) for r in results] == ["ea", None, "eb"]
    assert sorted(e.id for e in store.events_after(0)) == ["ea", "eb"]


def test_a_projection_failure_fails_only_its_own_request(store: Store) -> None:
    # A run id already stored under another event id breaks the runs table's
    # primary key inside the group's transaction; the others still commit.
    store.append(_run("r1"), event_id="first")
    results = store.append_each(
        [NewEvent(_run("r2"), "e2"), NewEvent(_run("r1"), "other"), NewEvent(_run("r3"), "e3")]
    )
    assert isinstance(results[1], ConflictError)
    assert not isinstance(results[0], Exception)
    assert not isinstance(results[2], Exception)
    assert sorted(e.id for e in store.events_after(0)) == ["e2", "e3", "first"]


def test_an_id_reused_in_another_project_is_a_conflict_and_reveals_nothing(store: Store) -> None:
    store.append(_run("shared", project="a", output="secret of a"), event_id="shared")
    with pytest.raises(ConflictError) as refused:
        store.append(_run("shared", project="b", output="secret of a"), event_id="shared")
    assert "secret" not in refused.value.message
    assert store.get_run("shared").project == "a"


def test_a_payload_that_would_not_read_back_is_refused_before_it_is_stored(store: Store) -> None:
    run = Run(id="r", project="p", output="x", metadata={"ratio": float("inf")})
    with pytest.raises(ValidationError):
        store.append(RunCompleted(run=run))
    assert store.events_after(0) == []


def test_a_locked_key_lets_exactly_one_of_two_simultaneous_ratings_through(store: Store) -> None:
    store.append(ProjectConfigured(project="p", settings=ProjectSettings(changeable=False)))
    store.append(_run("r"))
    service = FeedbackService(store)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def rate(value: str) -> None:
        start.wait()
        try:
            service.record(run_id="r", key="thumbs", value=value, user="ann")
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("refused")

    threads = [threading.Thread(target=rate, args=("up" if i % 2 else "down",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7
    assert len(store.feedback_for_run("r", history=True)) == 1


def test_a_locked_key_refuses_two_ratings_in_one_batch(store: Store) -> None:
    store.append(ProjectConfigured(project="p", settings=ProjectSettings(changeable=False)))
    store.append(_run("r"))
    ratings = [
        NewEvent(
            FeedbackRecorded(
                feedback=Feedback(project="p", run_id="r", key="thumbs", value=v, user="ann")
            ),
            once=True,
        )
        for v in ("up", "down")
    ]
    results = store.append_each(ratings)
    assert [isinstance(r, ConflictError) for r in results] == [False, True]


async def test_writes_after_close_are_refused_and_queued_ones_finish(store_url_only: str) -> None:
    store = Store(store_url_only)
    writes = [asyncio.ensure_future(store.append_async(_run(f"r{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # every write is queued, none is answered yet
    assert not any(w.done() for w in writes)
    store.close()
    stored = await asyncio.gather(*writes)
    assert sorted(e.seq for e in stored) == list(range(1, 51))
    with pytest.raises(StorageError, match="the store is closed"):
        store.append(_run("late"))
    with Store(store_url_only) as reopened:
        assert reopened.info()["rows"]["runs"] == 50


def _events(event_id: str) -> list[PreparedEvent]:
    return prepare([NewEvent(_run(event_id), event_id)])


def test_a_group_waits_for_as_many_as_the_one_before_and_no_longer() -> None:
    groups: list[list[str]] = []

    def commit(group: list[WriteRequest]) -> None:
        groups.append([request.events[0].id for request in group])
        for request in group:
            request.done([])

    def later(event_id: str, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, lambda: writer.submit(_events(event_id)).result())
        timer.start()
        return timer

    # Waits this long would stall the test: every wait it passes ended early.
    writer = GroupWriter(commit, gather=30.0)
    started = time.monotonic()
    try:
        writer.submit(_events("alone")).result()  # nothing before it: no wait
        for future in writer.submit_each([_events("a"), _events("b"), _events("c")]):
            future.result()  # a lone group before it: no wait
        timers = [later("y", 0.05), later("z", 0.1)]
        writer.submit(_events("x")).result()  # waits for two more, as the group before had
        for timer in timers:
            timer.join()
    finally:
        writer.close()
    assert groups[:2] == [["alone"], ["a", "b", "c"]]
    assert sorted(groups[2]) == ["x", "y", "z"]
    assert len(groups) == 3
    assert time.monotonic() - started < 10
