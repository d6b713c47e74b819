"""Datasets through the API: list them, make one, add runs to one as examples."""

from __future__ import annotations

from tuneback.server.access import key_rule
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import (
    DatasetCreate,
    DatasetItemPublic,
    DatasetItemsPublic,
    DatasetPublic,
    DatasetRunsAdd,
    DatasetsPublic,
)
from tuneback.server.auth import CallerDep
from tuneback.server.deps import ServicesDep

router = resource_router("/datasets", "datasets")


@router.get("", summary="The project's datasets", dependencies=[key_rule("manage")])
def list_datasets(
    caller: CallerDep, services: ServicesDep, project: str | None = None
) -> DatasetsPublic:
    found = services.store.list_datasets(caller.project(project))
    data = [DatasetPublic.model_validate(d.model_dump()) for d in found]
    return DatasetsPublic(data=data, count=len(data))


@router.post("", status_code=201, summary="Make a dataset", dependencies=[key_rule("manage")])
def create_dataset(body: DatasetCreate, caller: CallerDep, services: ServicesDep) -> DatasetPublic:
    dataset = services.datasets.create(
        project=caller.project(body.project), name=body.name, description=body.description
    )
    return DatasetPublic.model_validate(dataset.model_dump())


@router.post(
    "/{dataset_id}/items",
    status_code=201,
    summary="Add runs to a dataset as examples",
    dependencies=[key_rule("manage")],
)
def add_runs(
    dataset_id: str, body: DatasetRunsAdd, caller: CallerDep, services: ServicesDep
) -> DatasetItemsPublic:
    """Each run's item, whether added now or before (a run is in a dataset once)."""
    datasets = services.datasets
    caller.check(datasets.get(dataset_id).project, "dataset", dataset_id)
    datasets.add_runs(dataset_id, body.run_ids)
    by_run = {item.source_run_id: item for item in services.store.dataset_items(dataset_id)}
    data = [
        DatasetItemPublic.model_validate(by_run[run_id].model_dump(mode="json"))
        for run_id in dict.fromkeys(body.run_ids)
        if run_id in by_run
    ]
    return DatasetItemsPublic(data=data, count=len(data))
