"""What an export reads (filters) and the thresholds its formats apply (rules)."""

from __future__ import annotations

from pydantic import Field, model_validator

from tuneback.domain.common import DomainModel, UtcDatetime
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection, find_dataset

DEFAULT_THRESHOLD = 0.7
"""A run scoring at least this is good (SFT, KTO desirable); at most 1 - this is bad."""

DEFAULT_MIN_GAP = 0.5
"""Two answers to the same prompt make a DPO pair when their scores differ by at least this."""


class ExportFilters(DomainModel):
    """Which data to export. Every field narrows the selection; unset means everything.

    ``since``/``until`` bound when the runs ran (their ``started_at``, else when
    they were recorded; the feedback's ``created_at`` for the ``feedback``
    format), ``until`` exclusive. ``key`` picks the feedback key that
    scores a run (default: the mean of every current scored key);
    ``min_score``/``max_score`` keep runs whose score lies in the range and drop
    unrated runs. ``dataset`` (a name or id) keeps the runs its items came from,
    and makes ``sft``/``openai-sft`` export the dataset's own items.
    """

    project: str | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    models: tuple[str, ...] = ()
    key: str | None = None
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    max_score: float | None = Field(default=None, ge=0.0, le=1.0)
    dataset: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ExportFilters:
        if self.since and self.until and not self.since < self.until:
            raise ValueError("since must be before until")
        if (
            self.min_score is not None
            and self.max_score is not None
            and self.min_score > self.max_score
        ):
            raise ValueError("min_score must not exceed max_score")
        return self

    def selection(self, store: Store) -> RunSelection:
        """The storage-level selection, with the dataset name resolved to its id."""
        dataset_id = None
        if self.dataset is not None:
            dataset_id = find_dataset(store, self.dataset, self.project)
        return RunSelection(
            project=self.project,
            since=self.since,
            until=self.until,
            models=self.models,
            key=self.key,
            min_score=self.min_score,
            max_score=self.max_score,
            dataset_id=dataset_id,
        )


class ExportRules(DomainModel):
    """The thresholds that decide which runs become rows (see :mod:`tuneback.export.formats`)."""

    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0.0, le=1.0)
    min_gap: float = Field(default=DEFAULT_MIN_GAP, gt=0.0, le=1.0)
    history: bool = False
    """``runs``/``feedback``: include superseded and retracted feedback."""
