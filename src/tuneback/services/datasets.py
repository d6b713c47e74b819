"""Curating datasets: the examples (input messages and an ideal answer) a model trains on.

A run joins a dataset with the best answer known for it: the latest correction
someone wrote, else its own output (add the winning run of a comparison to keep
the chosen side). Every change is an event, and the dataset's
version counts them, so an export can name exactly what it was built from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tuneback.domain import (
    ChatMessage,
    Dataset,
    DatasetCreated,
    DatasetItem,
    DatasetItemAdded,
    DatasetItemRecord,
    DatasetItemRemoved,
    DatasetRecord,
    Run,
    new_id,
    utcnow,
    validate,
)
from tuneback.domain.dataset import ItemSource
from tuneback.errors import ConflictError, NotFoundError, ValidationError
from tuneback.storage import NewEvent, Store


class DatasetService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, *, project: str, name: str, description: str | None = None) -> DatasetRecord:
        if any(d.name == name for d in self.store.list_datasets(project)):
            raise ConflictError(f"a dataset named {name!r} already exists in {project}")
        dataset = validate(
            Dataset,
            {"project": project, "name": name, "description": description or None},
            what="dataset",
        )
        self.store.append(DatasetCreated(dataset=dataset))
        return self.get(dataset.id)

    def get(self, dataset_id: str) -> DatasetRecord:
        dataset = self.store.get_dataset(dataset_id)
        if dataset is None:
            raise NotFoundError(f"no dataset with id {dataset_id}")
        return dataset

    def ideal_answer(self, run: Run) -> tuple[str, ItemSource]:
        """The best answer known for a run's inputs, and where it came from."""
        corrections = [f for f in self.store.feedback_for_run(run.id) if f.correction and f.current]
        if corrections:
            return corrections[-1].correction or "", "correction"
        if not run.output:
            raise ValidationError(f"run {run.id} has no answer and no correction to learn from")
        return run.output, "run"

    def add_runs(self, dataset_id: str, run_ids: Iterable[str]) -> list[DatasetItemRecord]:
        """Add runs as examples; a run already in the dataset is not added twice."""
        dataset = self.get(dataset_id)
        present = {item.source_run_id for item in self.store.dataset_items(dataset_id)}
        events: list[NewEvent] = []
        for run_id in dict.fromkeys(run_ids):
            if run_id in present:
                continue
            run = self.store.get_run(run_id)
            if run.project != dataset.project:
                # Another project's run does not exist from this dataset's point of view.
                raise NotFoundError(f"no run with id {run_id} in project {dataset.project!r}")
            if not isinstance(run.inputs, list) or not run.inputs:
                raise ValidationError(
                    f"run {run_id} has no chat messages as inputs, so it cannot be an example"
                )
            output, source = self.ideal_answer(run)
            item = DatasetItem(
                dataset_id=dataset.id,
                project=dataset.project,
                inputs=[ChatMessage(role=m.role, content=m.content) for m in run.inputs],
                output=output,
                source=source,
                source_run_id=run.id,
                metadata={"model": run.model} if run.model else {},
            )
            # The item's id doubles as the event id: adding the same item again is a no-op.
            # One action, one version: only the first item starts a new one.
            added = DatasetItemAdded(item=item, new_version=not events)
            events.append(NewEvent(added, id=item.id))
        self.store.append_many(events)
        ids = {e.payload.item.id for e in events}  # type: ignore[attr-defined]
        return [item for item in self.store.dataset_items(dataset_id) if item.id in ids]

    def remove_item(self, dataset_id: str, item_id: str) -> DatasetRecord:
        dataset = self.get(dataset_id)
        if not any(item.id == item_id for item in self.store.dataset_items(dataset_id)):
            raise NotFoundError(f"no item {item_id} in dataset {dataset.name}")
        self.store.append(
            DatasetItemRemoved(project=dataset.project, dataset_id=dataset_id, item_id=item_id)
        )
        return self.get(dataset_id)

    def restore_item(self, dataset_id: str, item_id: str) -> DatasetItemRecord:
        """Undo a removal: the removed item comes back, as it was, as a new item.

        The log still holds the item as it was added (its id is that event's id);
        the copy gets a new id, a new version and ``restored_from`` in its metadata.
        A run whose example is in the dataset again by now is not added twice.
        """
        dataset = self.get(dataset_id)
        try:
            event = self.store.get_event(item_id)
        except NotFoundError:
            event = None
        payload = event.payload if event is not None else None
        if not isinstance(payload, DatasetItemAdded) or payload.item.dataset_id != dataset.id:
            raise NotFoundError(f"no removed item {item_id} in dataset {dataset.name}")
        present = self.store.dataset_items(dataset_id)
        for item in present:
            if item.id == item_id or (
                payload.item.source_run_id is not None
                and item.source_run_id == payload.item.source_run_id
            ):
                return item
        copy = payload.item.model_copy(
            update={
                "id": new_id(),
                "created_at": utcnow(),
                "metadata": {**payload.item.metadata, "restored_from": item_id},
            }
        )
        self.store.append_many([NewEvent(DatasetItemAdded(item=copy), id=copy.id)])
        return next(item for item in self.store.dataset_items(dataset_id) if item.id == copy.id)

    def summary(self, project: str) -> list[dict[str, Any]]:
        return [d.model_dump(mode="json") for d in self.store.list_datasets(project)]
