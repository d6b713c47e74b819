"""Datasets: curated examples (input messages and an ideal answer) to train on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneback.domain.common import (
    DomainModel,
    Identifier,
    Metadata,
    ProjectName,
    UtcDatetime,
    new_id,
    utcnow,
)
from tuneback.domain.conversation import ChatMessage

ItemSource = Literal["run", "correction", "comparison", "manual"]


class Dataset(DomainModel):
    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)


class DatasetItem(DomainModel):
    """One example; the store numbers the dataset's version as items are added."""

    id: Identifier = Field(default_factory=new_id)
    dataset_id: Identifier
    project: ProjectName = "default"
    inputs: list[ChatMessage] = Field(min_length=1)
    output: str
    source: ItemSource = "manual"
    source_run_id: Identifier | None = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)


class DatasetRecord(Dataset):
    """A dataset as the store holds it: ``version`` counts the changes to its items."""

    version: int = 0
    item_count: int = 0


class DatasetItemRecord(DatasetItem):
    """An item with the dataset version it was added in."""

    version: int
