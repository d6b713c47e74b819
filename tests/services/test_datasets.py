"""Datasets: examples from runs (corrections win), no duplicates, removal bumps the version."""

from __future__ import annotations

import pytest

from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.services.datasets import DatasetService
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store


def _run(store: Store, question: str, answer: str) -> Run:
    run = Run(project="demo", inputs=[ChatMessage(role="user", content=question)], output=answer)
    store.append(RunCompleted(run=run))
    return run


def test_runs_become_examples_with_their_best_answer(store: Store) -> None:
    datasets = DatasetService(store)
    plain = _run(store, "2+2?", "4")
    corrected = _run(store, "Capital of France?", "Berlin")
    FeedbackService(store).record(
        run_id=corrected.id, key="correction", correction="Paris", user="ann"
    )
    dataset = datasets.create(project="demo", name="facts", description="Short answers")
    assert (dataset.name, dataset.version, dataset.item_count) == ("facts", 0, 0)

    items = datasets.add_runs(dataset.id, [plain.id, corrected.id, plain.id])
    assert [(i.output, i.source, i.source_run_id, i.version) for i in items] == [
        ("4", "run", plain.id, 1),
        ("Paris", "correction", corrected.id, 1),
    ]
    assert items[1].inputs == [ChatMessage(role="user", content="Capital of France?")]
    assert datasets.add_runs(dataset.id, [plain.id]) == []  # already there
    assert datasets.get(dataset.id).item_count == 2

    after = datasets.remove_item(dataset.id, items[0].id)
    assert (after.version, after.item_count) == (2, 1)
    assert [i.output for i in store.dataset_items(dataset.id)] == ["Paris"]


def test_mistakes_get_clear_errors(store: Store) -> None:
    datasets = DatasetService(store)
    dataset = datasets.create(project="demo", name="facts")
    with pytest.raises(ConflictError, match="already exists"):
        datasets.create(project="demo", name="facts")
    with pytest.raises(NotFoundError, match="no dataset with id nope"):
        datasets.add_runs("nope", [])
    with pytest.raises(NotFoundError, match="no run with id nope"):
        datasets.add_runs(dataset.id, ["nope"])
    chain = Run(project="demo", run_type="chain", inputs={"question": "x"}, output="y")
    store.append(RunCompleted(run=chain))
    with pytest.raises(ValidationError, match="no chat messages"):
        datasets.add_runs(dataset.id, [chain.id])
    with pytest.raises(NotFoundError, match="no item nope"):
        datasets.remove_item(dataset.id, "nope")


def test_rebuild_reproduces_datasets(store: Store) -> None:
    datasets = DatasetService(store)
    runs = [_run(store, f"q{n}", f"a{n}") for n in range(3)]
    dataset = datasets.create(project="demo", name="d")
    items = datasets.add_runs(dataset.id, [r.id for r in runs])
    datasets.remove_item(dataset.id, items[1].id)
    before = (datasets.get(dataset.id), store.dataset_items(dataset.id))
    store.rebuild()
    assert (datasets.get(dataset.id), store.dataset_items(dataset.id)) == before


def _user_run(store: Store, question: str, user: str) -> Run:
    run = Run(
        project="demo",
        user=user,
        inputs=[ChatMessage(role="user", content=question)],
        output=f"answer to {question}",
    )
    store.append(RunCompleted(run=run))
    return run


def test_one_bulk_add_is_one_version(store: Store) -> None:
    datasets = DatasetService(store)
    runs = [_run(store, f"q{n}", f"a{n}") for n in range(10)]
    dataset = datasets.create(project="demo", name="bulk")
    items = datasets.add_runs(dataset.id, [r.id for r in runs])
    assert [(i.source_run_id, i.version) for i in items] == [(r.id, 1) for r in runs]
    assert (datasets.get(dataset.id).version, datasets.get(dataset.id).item_count) == (1, 10)
    one_more = datasets.add_runs(dataset.id, [_run(store, "q10", "a10").id])
    assert [i.version for i in one_more] == [2]
    datasets.remove_item(dataset.id, items[0].id)
    assert datasets.get(dataset.id).version == 3
    before = (datasets.get(dataset.id), store.dataset_items(dataset.id))
    store.rebuild()
    assert (datasets.get(dataset.id), store.dataset_items(dataset.id)) == before


def test_forgetting_a_user_keeps_the_versions_of_a_bulk_add(store: Store) -> None:
    datasets = DatasetService(store)
    leaving = [_user_run(store, f"mine {n}", "leaver") for n in range(2)]
    staying = [_user_run(store, f"theirs {n}", "stayer") for n in range(2)]
    dataset = datasets.create(project="demo", name="mixed")
    # The leaver's run comes first, so its item is the one that started the version.
    datasets.add_runs(dataset.id, [leaving[0].id, staying[0].id, leaving[1].id])
    datasets.add_runs(dataset.id, [staying[1].id])
    store.forget_user("leaver", project="demo")
    kept = store.dataset_items(dataset.id)
    assert [(i.source_run_id, i.version) for i in kept] == [(staying[0].id, 1), (staying[1].id, 2)]
    assert datasets.get(dataset.id).version == 2
    before = (datasets.get(dataset.id), kept)
    store.rebuild()
    assert (datasets.get(dataset.id), store.dataset_items(dataset.id)) == before


def test_a_removal_can_be_undone(store: Store) -> None:
    datasets = DatasetService(store)
    runs = [_run(store, f"q{n}", f"a{n}") for n in range(2)]
    dataset = datasets.create(project="demo", name="undo")
    first, second = datasets.add_runs(dataset.id, [r.id for r in runs])
    datasets.remove_item(dataset.id, first.id)
    back = datasets.restore_item(dataset.id, first.id)
    assert (back.inputs, back.output, back.source, back.source_run_id, back.version) == (
        first.inputs,
        first.output,
        first.source,
        first.source_run_id,
        3,
    )
    assert back.id != first.id
    assert back.metadata == {**first.metadata, "restored_from": first.id}
    assert [i.id for i in store.dataset_items(dataset.id)] == [second.id, back.id]
    # Undoing twice, or undoing an item that is still there, changes nothing.
    assert datasets.restore_item(dataset.id, first.id) == back
    assert datasets.restore_item(dataset.id, second.id) == second
    assert datasets.get(dataset.id).version == 3
    other = datasets.create(project="demo", name="other")
    with pytest.raises(NotFoundError, match="no removed item"):
        datasets.restore_item(other.id, first.id)
    with pytest.raises(NotFoundError, match="no removed item"):
        datasets.restore_item(dataset.id, runs[0].id)
    before = (datasets.get(dataset.id), store.dataset_items(dataset.id))
    store.rebuild()
    assert (datasets.get(dataset.id), store.dataset_items(dataset.id)) == before
