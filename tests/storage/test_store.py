import threading
import time
from datetime import timedelta

import pytest

from tests.factories import T0, conversation_events
from tests.storage.snapshot import projection_snapshot
from tuneback.domain import (
    ComparisonRecord,
    ContinuousConfig,
    ConversationStarted,
    Feedback,
    FeedbackRecorded,
    FeedbackRetracted,
    ProjectSettings,
    Run,
    RunCompleted,
    StoredEvent,
)
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.storage import NewEvent, Store
from tuneback.storage.migrate import head_revision


def test_every_event_type_round_trips_through_the_log(store: Store) -> None:
    payloads = conversation_events()
    stored = [store.append(p) for p in payloads]
    assert [e.seq for e in stored] == list(range(1, len(payloads) + 1))
    read = store.events_after(0)
    assert read == stored
    assert [e.payload for e in read] == payloads
    assert {e.project for e in read} == {"demo"}


def test_projections_show_what_the_events_say(store: Store) -> None:
    payloads = conversation_events()
    store.append_many(payloads)
    conv = payloads[0].conversation  # type: ignore[attr-defined]
    question, first, answer, failed, second, sibling = (
        payloads[1].message,  # type: ignore[attr-defined]
        payloads[2].run,  # type: ignore[attr-defined]
        payloads[3].message,  # type: ignore[attr-defined]
        payloads[4].run,  # type: ignore[attr-defined]
        payloads[5].run,  # type: ignore[attr-defined]
        payloads[6].message,  # type: ignore[attr-defined]
    )
    assert store.get_conversation(conv.id) == conv.model_copy(
        update={
            "ended_at": T0 + timedelta(minutes=1),
            "title": "Sums from 0",
            "deleted_at": T0 + timedelta(minutes=3),
        }
    )
    assert store.conversation_messages(conv.id) == [question, answer, sibling]
    assert store.get_run(first.id) == first
    assert store.get_run(failed.id) == failed
    assert store.list_runs("demo") == [second, failed, first]

    current = store.feedback_for_run(first.id)
    assert [(f.key, f.value, f.user) for f in current] == [
        ("regenerated", None, "ann"),
        ("thumbs", "down", "ann"),
        ("correction", None, "reviewer"),
        ("thumbs", "up", "reviewer"),
    ]
    history = store.feedback_for_run(first.id, history=True)
    superseded = [f for f in history if not f.current]
    assert [(f.value, f.superseded_by) for f in superseded] == [("up", current[1].id)]
    retracted = store.feedback_for_run(second.id, history=True)
    assert len(retracted) == 1
    assert retracted[0].retracted_at == T0 + timedelta(seconds=8)
    assert store.feedback_for_run(second.id) == []

    comparison = payloads[13].comparison  # type: ignore[attr-defined]
    assert store.get_comparison(comparison.id) == ComparisonRecord(**dict(comparison))
    [dataset] = store.list_datasets("demo")
    assert (dataset.name, dataset.version, dataset.item_count) == ("sums-0", 3, 1)
    [item] = store.dataset_items(dataset.id)
    assert item.version == 1
    assert item.output == "1"
    project = store.get_project("demo")
    assert (project.settings.feedback, project.settings.latest_only) == (["faces", "comment"], True)
    assert store.get_project("unseen").settings == ProjectSettings()
    assert store.feedback_configs("demo") == {"helpfulness": ContinuousConfig(min=1, max=10)}
    assert store.list_projects() == ["demo"]


def test_rebuild_reproduces_every_projection_exactly(store: Store) -> None:
    for n in range(5):
        store.append_many(conversation_events(n, user=f"user{n % 2}"))
    for n in range(5, 8):
        for payload in conversation_events(n, project="other"):
            store.append(payload)
    before = projection_snapshot(store)
    assert all(before[name] for name in before), "every projection has rows"
    assert store.rebuild() == 8 * len(conversation_events())
    assert projection_snapshot(store) == before
    # A second store on the same database sees the same, and can rebuild too.
    with Store(store.url.render_as_string(hide_password=False)) as again:
        assert again.rebuild() == 8 * len(conversation_events())
        assert projection_snapshot(again) == before


@pytest.mark.parametrize("rewrite", ["rebuild", "forget"])
def test_rewriting_the_projections_beside_writers_of_another_process(
    database_url: str, rewrite: str
) -> None:
    # A writer in another process changes rows (a re-vote marks the vote it
    # replaces) while rebuilds empty and refill every table, or the voter is
    # forgotten: neither may undo the other or wait on the other for ever, so
    # every vote is stored and the tables end as replaying the whole log makes them.
    with Store(database_url) as rebuilding, Store(database_url) as voting:
        for n in range(20):
            rebuilding.append_many(conversation_events(n, user=f"user{n % 3}"))
        runs = [Run(project="votes", inputs=[], output=str(n)) for n in range(4)]
        voting.append_many(RunCompleted(run=run) for run in runs)
        done = threading.Event()
        failures: list[Exception] = []
        voted = [0]

        def revote() -> None:
            n = 0
            while not done.is_set():
                run = runs[n % len(runs)]
                value = ("up", "down")[n // len(runs) % 2]
                feedback = Feedback(
                    project="votes", run_id=run.id, key="thumbs", value=value, user="ann"
                )
                try:
                    voting.append(FeedbackRecorded(feedback=feedback))
                except Exception as exc:  # handed to the test's thread
                    failures.append(exc)
                    return
                n += 1
                voted[0] = n

        writer = threading.Thread(target=revote)
        writer.start()
        try:
            for _ in range(6):
                # Votes go in between the rewrites (at least one), and during them.
                seen, deadline = voted[0], time.monotonic() + 30
                time.sleep(0.05)
                while voted[0] == seen and not failures and time.monotonic() < deadline:
                    time.sleep(0.01)
                if rewrite == "rebuild":
                    rebuilding.rebuild()
                else:
                    rebuilding.forget_user("ann")
        finally:
            done.set()
            writer.join()

        assert failures == []
        current = [len(voting.feedback_for_run(run.id)) for run in runs]
        assert current == [1] * len(runs) if rewrite == "rebuild" else max(current) <= 1
        written = projection_snapshot(rebuilding, rollups=True)
        rebuilding.rebuild()
        assert projection_snapshot(rebuilding, rollups=True) == written


def test_retried_event_id_is_a_noop_returning_the_original(store: Store) -> None:
    run = Run(project="demo", output="hi")
    first = store.append(RunCompleted(run=run), event_id="client-key-1")
    again = store.append(RunCompleted(run=run), event_id="client-key-1")
    assert again == first
    batch = store.append_many(
        [
            NewEvent(RunCompleted(run=run), id="client-key-1"),
            NewEvent(RunCompleted(run=Run(project="demo")), id="client-key-2"),
            NewEvent(RunCompleted(run=Run(project="demo")), id="client-key-2"),
        ]
    )
    assert batch[0] == first
    assert batch[1] == batch[2]
    assert batch[1].seq == 2
    assert store.last_seq() == 2
    assert len(store.list_runs("demo")) == 2


def test_reusing_an_object_id_under_a_new_event_is_a_conflict_and_writes_nothing(
    store: Store,
) -> None:
    run = Run(project="demo", output="hi")
    store.append(RunCompleted(run=run))
    with pytest.raises(ConflictError, match="already used"):
        store.append_many([RunCompleted(run=Run(project="demo")), RunCompleted(run=run)])
    assert store.last_seq() == 1
    assert len(store.list_runs("demo")) == 1


def test_appending_something_that_is_not_a_payload_is_a_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError, match="not an event payload"):
        store.append_many([Run()])  # type: ignore[list-item]


def test_reads_of_missing_things_say_what_is_missing(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no run with id nope"):
        store.get_run("nope")
    with pytest.raises(NotFoundError, match="no feedback with id nope"):
        store.get_feedback("nope")
    with pytest.raises(NotFoundError, match="no event with id nope"):
        store.get_event("nope")


def test_events_after_pages_and_filters(store: Store) -> None:
    store.append_many(conversation_events(0, project="a"))
    store.append_many(conversation_events(1, project="b"))
    per = len(conversation_events())
    page1 = store.events_after(0, limit=5)
    page2 = store.events_after(page1[-1].seq, limit=5)
    assert [e.seq for e in page1 + page2] == list(range(1, 11))
    assert {e.project for e in store.events_after(0, project="b")} == {"b"}
    assert len(store.events_after(0, project="b")) == per
    runs = store.events_after(0, types=["run.completed", "run.failed"])
    assert [e.type for e in runs] == ["run.completed", "run.failed", "run.completed"] * 2


def test_feedback_supersede_is_per_user_key_and_target(store: Store) -> None:
    run = Run(project="demo")
    store.append(RunCompleted(run=run))

    def rate(user: str | None, key: str, value: str) -> Feedback:
        fb = Feedback(project="demo", run_id=run.id, key=key, value=value, user=user)
        store.append(FeedbackRecorded(feedback=fb))
        return fb

    rate("ann", "thumbs", "up")
    rate("bob", "thumbs", "up")
    rate("ann", "helpful", "0.5")
    latest = rate("ann", "thumbs", "down")
    rate(None, "thumbs", "up")
    rate(None, "thumbs", "down")  # anonymous ratings cannot supersede each other
    current = {(f.user, f.key, f.value) for f in store.feedback_for_run(run.id)}
    assert current == {
        ("bob", "thumbs", "up"),
        ("ann", "helpful", "0.5"),
        ("ann", "thumbs", "down"),
        (None, "thumbs", "up"),
        (None, "thumbs", "down"),
    }
    store.append(FeedbackRetracted(project="demo", feedback_id=latest.id, user="ann"))
    assert ("ann", "thumbs", "down") not in {
        (f.user, f.key, f.value) for f in store.feedback_for_run(run.id)
    }
    assert len(store.feedback_for_run(run.id, history=True)) == 6


def test_conversations_are_listed_newest_first_and_per_user(store: Store) -> None:
    for n in range(4):
        store.append_many(conversation_events(n, user="ann" if n % 2 else "bob"))
    listed = store.list_conversations("demo")
    assert [c.started_at for c in listed] == sorted((c.started_at for c in listed), reverse=True)
    assert {c.user for c in store.list_conversations("demo", user="ann")} == {"ann"}
    assert store.list_conversations("nobody-here") == []


def test_info_counts_rows(store: Store) -> None:
    store.append_many(conversation_events())
    info = store.info()
    assert info["revision"] == info["head"] == head_revision()
    assert info["last_seq"] == len(conversation_events())
    assert info["rows"] == {
        "projects": 1,
        "feedback_configs": 1,
        "conversations": 1,
        "messages": 3,
        "runs": 3,
        "feedback": 6,
        "comparisons": 1,
        "comparison_runs": 2,
        "datasets": 1,
        "dataset_items": 1,
        "review_queues": 1,
        "review_feedback": 1,
        "review_members": 3,
        "annotation_tasks": 1,
        "rollups": 18,  # with one row per user and model for all time
        "rollup_scores": 8,
        "rollup_firsts": 6,
        "rollup_newcomers": 6,
        "rollup_days": 6,
        "rollup_returns": 6,
        "events": len(conversation_events()),
    }


def test_stored_events_serialise_to_json_lines(store: Store) -> None:
    [event] = [store.append(conversation_events()[0])]
    assert isinstance(event, StoredEvent)
    data = event.to_json_dict()
    assert set(data) == {"seq", "id", "type", "version", "project", "recorded_at", "payload"}
    assert data["payload"]["conversation"]["user"] == "ann"
    assert isinstance(ConversationStarted.model_validate(data["payload"]), ConversationStarted)
