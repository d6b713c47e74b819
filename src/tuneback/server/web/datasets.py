"""The datasets pages and their actions: create, add runs, remove and restore, download."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import Field
from starlette.background import BackgroundTask

from tuneback.domain.dataset import DatasetRecord
from tuneback.errors import ValidationError
from tuneback.export import FORMATS, WRITERS, ExportFilters, export_dataset
from tuneback.server.access import in_this_project, rule
from tuneback.server.api.schemas import Body
from tuneback.server.deps import Services, ServicesDep
from tuneback.server.web.page import Page, page_view

router = APIRouter(include_in_schema=False)


class DatasetBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)


class AddRunsBody(Body):
    run_ids: list[str] = Field(min_length=1, max_length=10_000)


@router.get("/datasets", dependencies=[rule("manage")])
@page_view
def datasets_page(request: Request, services: ServicesDep) -> Page:
    return Page(
        "datasets.html", "datasets", {"datasets": services.store.list_datasets(services.project)}
    )


@router.get("/datasets/{dataset_id}", dependencies=[rule("manage")])
@page_view
def dataset_page(request: Request, services: ServicesDep, dataset_id: str) -> Page:
    dataset = _dataset_here(request, services, dataset_id)
    return Page(
        "dataset.html",
        "datasets",
        {"dataset": dataset, "items": services.store.dataset_items(dataset_id)},
        extra=lambda: {"formats": FORMATS, "writers": WRITERS},
    )


def _dataset_here(request: Request, services: Services, dataset_id: str) -> DatasetRecord:
    """The dataset, when it is one of this server's project (to anyone else it does not exist)."""
    dataset = services.datasets.get(dataset_id)
    in_this_project(request, dataset.project, "dataset", dataset_id)
    return dataset


@router.post("/ui/datasets", dependencies=[rule("manage")])
def create_dataset(services: ServicesDep, body: DatasetBody) -> dict[str, Any]:
    dataset = services.datasets.create(
        project=services.project, name=body.name, description=body.description
    )
    return dataset.model_dump(mode="json")


@router.post("/ui/datasets/{dataset_id}/items", dependencies=[rule("manage")])
def add_to_dataset(
    request: Request, services: ServicesDep, dataset_id: str, body: AddRunsBody
) -> dict[str, Any]:
    _dataset_here(request, services, dataset_id)
    added = services.datasets.add_runs(dataset_id, body.run_ids)
    return {"added": len(added), "items": [i.model_dump(mode="json") for i in added]}


@router.delete("/ui/datasets/{dataset_id}/items/{item_id}", dependencies=[rule("manage")])
def remove_from_dataset(
    request: Request, services: ServicesDep, dataset_id: str, item_id: str
) -> dict[str, Any]:
    _dataset_here(request, services, dataset_id)
    return services.datasets.remove_item(dataset_id, item_id).model_dump(mode="json")


@router.post("/ui/datasets/{dataset_id}/items/{item_id}/restore", dependencies=[rule("manage")])
def restore_to_dataset(
    request: Request, services: ServicesDep, dataset_id: str, item_id: str
) -> dict[str, Any]:
    """Undo a removal: the item comes back (as a new item, in a new version)."""
    _dataset_here(request, services, dataset_id)
    return services.datasets.restore_item(dataset_id, item_id).model_dump(mode="json")


DOWNLOAD_WRITERS = {"jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": None}
"""Writers whose file a browser downloads as it is; ``hf`` (a directory) comes zipped."""


@router.get("/datasets/{dataset_id}/download", dependencies=[rule("manage")])
def download_dataset(
    request: Request,
    services: ServicesDep,
    dataset_id: str,
    format: str = "sft",
    writer: str = "jsonl",
) -> Response:
    """The dataset exported in any format and writer, by the same exporter as the CLI."""
    dataset = _dataset_here(request, services, dataset_id)
    if format not in FORMATS:
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if writer not in WRITERS:
        raise ValidationError(f"writer must be one of {', '.join(WRITERS)}, not {writer!r}")
    folder = Path(tempfile.mkdtemp(prefix="tuneback-download-"))
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    try:
        summary = export_dataset(
            services.store,
            format=format,
            output=folder / "out",
            writer=writer,
            filters=ExportFilters(project=dataset.project, dataset=dataset.id),
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    stem = f"{_file_safe(dataset.name)}-v{dataset.version}-{format}"
    files = [Path(f.path) for f in summary.files]
    if len(files) == 1 and files[0].is_file():
        media = DOWNLOAD_WRITERS.get(writer) or "application/octet-stream"
        return FileResponse(
            files[0],
            media_type=media,
            filename=f"{stem}{''.join(files[0].suffixes)}",
            background=cleanup,
        )
    archive = shutil.make_archive(str(folder / stem), "zip", root_dir=folder / "out")
    return FileResponse(
        archive, media_type="application/zip", filename=f"{stem}.zip", background=cleanup
    )


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "dataset"
