"""The owner of background work: it runs work, and at shutdown cancels and waits for it.

The app's lifespan shuts it down; an annotation task running at that moment
stops between answers, stores no half-said answer, and resumes later without
answering anything twice (on both databases).
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tests.api.conftest import make_app
from tuneback.domain import ChatMessage, task_tag
from tuneback.models import ScriptedModel
from tuneback.services.annotation import AnnotationService, answer_id
from tuneback.services.background import BackgroundWork, ShuttingDownError
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.review import ReviewService
from tuneback.storage import Store


def test_work_runs_in_its_own_thread_and_is_forgotten_when_done() -> None:
    work = BackgroundWork()
    seen: list[tuple[str, int]] = []
    job = work.start(
        lambda a, b: seen.append((threading.current_thread().name, a + b)), 1, 2, name="adding"
    )
    assert job.join(5)
    assert seen == [("adding", 3)]
    assert work.running == []
    assert work.shutdown(timeout=1) == []


def test_shutdown_cancels_waits_and_then_refuses_new_work() -> None:
    work = BackgroundWork()
    stop = threading.Event()
    stored: list[str] = []

    def write_until_stopped() -> None:
        stop.wait(10)
        time.sleep(0.05)  # the write still in progress when asked to stop
        stored.append("written")

    work.start(write_until_stopped, name="writer", cancel=stop.set)
    assert work.running == ["writer"]
    assert work.shutdown(timeout=5) == []
    assert stored == ["written"]
    with pytest.raises(ShuttingDownError, match="shutting down"):
        work.start(stored.append, "late", name="late")
    # Work that finishes other work is still taken, and run.
    work.start(stored.append, "finishing", name="finishing", finishing=True).join(5)
    assert stored == ["written", "finishing"]


def test_work_started_during_shutdown_to_finish_other_work_is_waited_for() -> None:
    work = BackgroundWork()
    stop = threading.Event()
    stored: list[str] = []

    def record() -> None:
        time.sleep(0.2)
        stored.append("recorded")

    def stream() -> None:
        stop.wait(10)
        work.start(record, name="record", finishing=True)

    work.start(stream, name="stream", cancel=stop.set)
    assert work.shutdown(timeout=5) == []
    assert stored == ["recorded"]


def test_shutdown_waits_only_as_long_as_it_is_told(caplog: pytest.LogCaptureFixture) -> None:
    work = BackgroundWork()
    release = threading.Event()
    job = work.start(release.wait, 10, name="stuck")  # no way to cancel it
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tuneback.background"):
        assert work.shutdown(timeout=0.2) == ["stuck"]
    assert time.monotonic() - began < 2
    assert "stuck" in caplog.text
    release.set()
    assert job.join(5)


def test_a_failure_in_background_work_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    work = BackgroundWork()

    def broken() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="tuneback.background"):
        assert work.start(broken, name="broken").join(5)
    assert "background work broken failed" in caplog.text
    assert work.running == []


def test_held_work_is_cancelled_and_waited_for_and_held_late_is_cancelled_at_once() -> None:
    work = BackgroundWork()
    stop = threading.Event()
    done: list[str] = []

    def page_stream() -> None:
        with work.holding("page", cancel=stop.set):
            stop.wait(10)
            time.sleep(0.1)  # storing the run
            done.append("stored")

    driver = threading.Thread(target=page_stream)
    driver.start()
    while work.running != ["page"]:
        time.sleep(0.01)
    assert work.shutdown(timeout=5) == []
    assert done == ["stored"]
    late = threading.Event()
    with work.holding("late", cancel=late.set):
        assert late.is_set()
    assert work.running == []
    driver.join(5)


def test_shutdown_stops_a_chat_answer_being_streamed_and_waits_for_its_run(
    store: Store,
) -> None:
    model = ScriptedModel()
    model.enqueue(chunks=[f"w{n} " for n in range(100)], delay=0.05)
    work = BackgroundWork()
    chat = ChatService(store, ModelCatalog([model]), background=work)
    conversation = chat.start_conversation(project="p")
    reply = chat.reply(chat.add_user_message(conversation.id, "Count.").id)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(reply))
    reader.start()
    while len(said) < 3:
        time.sleep(0.01)
    assert work.shutdown(timeout=10) == []
    # Stored before shutdown returned: nothing to wait for here.
    run = store.get_run(reply.run_id)
    assert run.status == "cancelled"
    assert run.output is not None
    assert run.output.startswith("w0 w1 w2 ")
    assert len(run.output.split()) < 100
    assert [m.content for m in store.conversation_messages(conversation.id)] == [
        "Count.",
        run.output,
    ]
    reader.join(5)
    assert "".join(said) == run.output


def _prompts(count: int) -> list[list[ChatMessage]]:
    return [[ChatMessage(role="user", content=f"Question {n}?")] for n in range(count)]


async def test_shutting_the_app_down_stops_an_annotation_task_cleanly(store: Store) -> None:
    model = ScriptedModel()
    for n in range(2):
        model.enqueue(chunks=[f"answer{n} ", "in ", "four ", "parts"], delay=0.05)
    app = make_app(store)
    catalog = ModelCatalog([model])
    reviews = ReviewService(store)
    async with app.router.lifespan_context(app):
        tasks = AnnotationService(store, catalog, reviews, background=app.state.services.background)
        task = tasks.create(project="p", name="long", prompts=_prompts(6))
        deadline = time.monotonic() + 10
        # Shut down while the second answer is half said: the first one is stored.
        while len(model.calls) < 2 or model.calls[1].chunks_sent < 2:
            assert time.monotonic() < deadline, "the task never started answering"
            time.sleep(0.01)
    # The lifespan has ended: the task is no longer running, and what it stored is whole.
    assert not tasks.running(task.id)
    runs = store.list_runs("p")
    [run] = runs
    assert (run.id, run.status, run.output) == (
        answer_id(task.id, 0, 0),
        "ok",
        "answer0 in four parts",
    )
    assert run.tags == [task_tag(task.id)]
    assert len(model.calls) == 2
    assert model.calls[1].closed_early  # the answer in progress was stopped, not stored
    assert store.events_after(0, types=["run.failed"]) == []
    with pytest.raises(ShuttingDownError):
        tasks.start(task.id)

    # Started again (as after a restart), it answers only what is missing.
    for n in range(1, 6):
        model.enqueue(f"again{n}")
    again = AnnotationService(store, catalog, reviews)
    assert again.start(task.id)
    assert again.wait(task.id, timeout=30).done == 6
    outputs = {r.id: r.output for r in store.list_runs("p")}
    assert len(outputs) == 6
    assert outputs[answer_id(task.id, 0, 0)] == "answer0 in four parts"
    assert [outputs[answer_id(task.id, n, 0)] for n in range(1, 6)] == [
        f"again{n}" for n in range(1, 6)
    ]
    assert len(model.calls) == 7
