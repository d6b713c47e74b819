"""Annotation tasks end to end: a prompt file, answers from scripted models, a review queue."""

from __future__ import annotations

import pytest

from tuneback.domain import ChatMessage, task_tag
from tuneback.errors import ModelError, ValidationError
from tuneback.models import EchoModel, ScriptedModel
from tuneback.services.annotation import AnnotationService, answer_id, parse_prompts
from tuneback.services.catalog import ModelCatalog
from tuneback.services.review import ReviewService
from tuneback.storage import Store


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def test_prompt_files_in_csv_and_jsonl() -> None:
    csv_text = 'prompt,system\n"Hi, there",Be brief.\n,\nSecond one,\n'
    assert parse_prompts("set.csv", csv_text) == [
        [ChatMessage(role="system", content="Be brief."), *_user("Hi, there")],
        _user("Second one"),
    ]
    jsonl = (
        '{"prompt": "One"}\n\n'
        '{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Two"}]}\n'
    )
    assert parse_prompts("set.jsonl", jsonl) == [
        _user("One"),
        [ChatMessage(role="system", content="S"), *_user("Two")],
    ]
    assert parse_prompts("pasted", '{"prompt": "Guessed"}') == [_user("Guessed")]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "question\nwhy?\n", "needs a header row with a 'prompt' column"),
        ("a.jsonl", '{"prompt": "ok"}\nnot json\n', "line 2: not JSON"),
        ("a.jsonl", '{"text": "x"}\n', "line 1: each line needs a 'prompt'"),
        (
            "a.jsonl",
            '{"messages": [{"role": "assistant", "content": "x"}]}',
            "line 1: 'messages' must end with a user message",
        ),
        ("a.csv", "prompt\n\n", "a.csv has no prompts"),
    ],
)
def test_bad_prompt_files_say_what_is_wrong(name: str, text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_prompts(name, text)


def test_a_task_answers_every_prompt_with_every_model_into_a_queue(store: Store) -> None:
    scripted = ScriptedModel(name="Scripted")
    scripted.enqueue("Paris.")
    scripted.enqueue(error=ModelError("the backend fell over"))
    scripted.enqueue("Blue.")
    models = ModelCatalog([scripted, EchoModel()])
    reviews = ReviewService(store)
    tasks = AnnotationService(store, models, reviews)
    prompts = parse_prompts("p.csv", "prompt\nCapital of France?\nTwo plus two?\nSky colour?\n")

    task = tasks.create(
        project="p",
        name="geography",
        prompts=prompts,
        models=["scripted", "echo"],
        created_by="owner",
    )
    progress = tasks.wait(task.id, timeout=30)
    assert (progress.total, progress.done, progress.failed, progress.complete) == (6, 5, 1, True)
    assert not tasks.running(task.id)
    assert [p.id for p in tasks.tasks("p")] == [task.id]

    runs = {run.id: run for run in store.list_runs("p")}
    first = runs[answer_id(task.id, 0, 0)]
    assert (first.model, first.output, first.tags) == ("scripted", "Paris.", [task_tag(task.id)])
    # The scripted model counts no tokens: the estimate is kept and marked, as in the chat.
    assert first.metadata == {
        "annotation_task": task.id,
        "prompt_index": 0,
        "usage_estimated": True,
    }
    assert [m.content for m in first.inputs] == ["Capital of France?"]  # type: ignore[union-attr]
    failed = runs[answer_id(task.id, 1, 0)]
    assert (failed.status, failed.error) == ("error", "the backend fell over")
    assert runs[answer_id(task.id, 2, 1)].model == "echo"

    queue = reviews.get(task.queue_id)
    assert (queue.name, queue.keys, queue.rule.tag) == (
        "geography",
        ["thumbs", "comment", "correction"],
        task_tag(task.id),
    )
    assert reviews.progress(queue).counts.total == 6
    item = reviews.next_item(queue.id, "ann")
    assert item is not None
    assert item.run.metadata["annotation_task"] == task.id


def test_a_task_seen_stopped_shows_every_answer_it_stored(store: Store) -> None:
    # Pages poll a task until it is complete or no longer running: a poll that
    # says "stopped" must carry the last answer, or the page stops one short.
    tasks = AnnotationService(store, ModelCatalog([EchoModel()]), ReviewService(store))
    prompts = [_user(f"prompt {n}") for n in range(3)]
    for attempt in range(25):
        task = tasks.create(project="p", name=f"race {attempt}", prompts=prompts)
        polls = 0
        while True:
            progress, running = tasks.status(task.id)
            polls += 1
            if not running:
                break
        assert (progress.done, progress.complete) == (3, True), (attempt, polls)
    assert [s[1] for s in tasks.statuses("p")] == [False] * 25
    assert sorted(s[0].done for s in tasks.statuses("p")) == [3] * 25


def test_a_stopped_task_resumes_without_answering_twice(store: Store) -> None:
    scripted = ScriptedModel(["One.", "Two."])
    tasks = AnnotationService(store, ModelCatalog([scripted]), ReviewService(store))
    task = tasks.create(project="p", name="resume", prompts=[_user("a"), _user("b")], start=False)
    assert tasks.progress(task.id).done == 0
    assert tasks.start(task.id)
    assert tasks.wait(task.id, timeout=30).done == 2
    assert tasks.start(task.id)  # again: nothing left to answer, nothing asked
    assert tasks.wait(task.id, timeout=30).done == 2
    assert len(scripted.calls) == 2
    assert store.rebuild() > 0
    assert tasks.progress(task.id).done == 2


def test_only_the_servers_models_can_answer(store: Store) -> None:
    tasks = AnnotationService(store, ModelCatalog([EchoModel()]), ReviewService(store))
    with pytest.raises(Exception, match="not offered here"):
        tasks.create(project="p", name="x", prompts=[_user("a")], models=["openai:gpt-4o"])
