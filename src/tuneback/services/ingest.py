"""Batch ingestion: many runs, feedback and comparisons in one call, each judged on its own.

Valid items are committed together in one transaction (one commit for the whole
batch is what makes batches fast); an item that breaks a rule is reported with
its own error and does not stop the others. Items whose id is already stored
are answered as the first time without being checked again, so a client may
resend a whole batch after a timeout: nothing is lost and nothing doubles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuneback.domain import (
    Comparison,
    ComparisonRecord,
    ComparisonRecorded,
    EventPayload,
    ProjectSettings,
    Run,
)
from tuneback.domain.feedback import FeedbackKind, FeedbackSource, RawValue
from tuneback.errors import NotFoundError, TuneBackError
from tuneback.services.comparisons import ComparisonService, check_candidates, check_supersedes
from tuneback.services.feedback import Config, FeedbackService, Rating
from tuneback.services.runs import run_event
from tuneback.storage import NewEvent, Store
from tuneback.storage.queries import Queries

_TYPE_OF_EVENT = {
    "run.completed": "run",
    "run.failed": "run",
    "feedback.recorded": "feedback",
    "comparison.recorded": "comparison",
}


@dataclass(frozen=True)
class FeedbackDraft:
    """Feedback as a client sent it, before the key's rules have scored it."""

    id: str
    run_id: str
    key: str
    value: RawValue = None
    score: float | None = None
    kind: FeedbackKind | None = None
    comment: str | None = None
    correction: str | None = None
    user: str | None = None
    source: FeedbackSource = "api"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def rating(self) -> Rating:
        """What the feedback service scores and checks, under this draft's id."""
        return Rating(
            value=self.value,
            score=self.score,
            kind=self.kind,
            comment=self.comment,
            correction=self.correction,
            user=self.user,
            source=self.source,
            metadata=self.metadata,
            feedback_id=self.id,
        )


Item = Run | Comparison | FeedbackDraft


def item_type(item: Item) -> str:
    if isinstance(item, Run):
        return "run"
    if isinstance(item, Comparison):
        return "comparison"
    return "feedback"


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one item: 201 and its id, or an error status and the error."""

    index: int
    type: str
    id: str | None
    status: int
    error: dict[str, Any] | None = None

    @classmethod
    def failed(cls, index: int, type_: str, id_: str | None, exc: TuneBackError) -> ItemResult:
        return cls(index, type_, id_, exc.status_code, exc.to_dict()["error"])


class IngestService:
    def __init__(self, store: Store, feedback: FeedbackService) -> None:
        self.store = store
        self.feedback = feedback
        self.queries = Queries(store)
        self.comparisons = ComparisonService(store)

    def ingest(
        self, items: Sequence[Item | ItemResult], *, scope: str | None = None
    ) -> list[ItemResult]:
        """Commit every valid item; ``items`` may already hold failures found upstream.

        With a ``scope``, feedback may only rate runs of that project.
        """
        results: list[ItemResult | None] = [
            item if isinstance(item, ItemResult) else None for item in items
        ]
        pending = [(i, item) for i, item in enumerate(items) if not isinstance(item, ItemResult)]
        events = self._prepare(pending, results, scope)
        # Each item is its own write, so one that clashes with a stored id fails
        # alone; queued together, they normally share one commit.
        outcomes = self.store.append_each([event for _, _, event in events])
        for (index, item_id, event), outcome in zip(events, outcomes, strict=True):
            kind = _kind(event.payload)
            if isinstance(outcome, TuneBackError):
                results[index] = ItemResult.failed(index, kind, item_id, outcome)
            else:
                results[index] = ItemResult(index, kind, item_id, 201)
        return [r for r in results if r is not None]

    def _prepare(
        self, fresh: list[tuple[int, Item]], results: list[ItemResult | None], scope: str | None
    ) -> list[tuple[int, str, NewEvent]]:
        batch_runs = {item.id: item for _, item in fresh if isinstance(item, Run)}
        wanted: set[str] = set()
        for _, item in fresh:
            if isinstance(item, FeedbackDraft):
                wanted.add(item.run_id)
            elif isinstance(item, Comparison):
                wanted.update(c.run_id for c in item.candidates)
        runs = self.queries.runs_by_ids(sorted(wanted - set(batch_runs)))
        runs.update(batch_runs)
        if scope is not None:
            runs = {run_id: run for run_id, run in runs.items() if run.project == scope}
        configs: dict[str, dict[str, Config]] = {}
        settings: dict[str, ProjectSettings] = {}
        events: list[tuple[int, str, NewEvent]] = []
        accepted: dict[str, ComparisonRecord] = {}
        replaced: dict[str, str] = {}
        for index, item in fresh:
            try:
                if isinstance(item, Comparison):
                    check_supersedes(item, self._earlier(item, accepted, replaced))
                payload = self._payload(item, runs, configs, settings)
            except TuneBackError as exc:
                results[index] = ItemResult.failed(index, item_type(item), item.id, exc)
                continue
            events.append((index, item.id, payload))
            if isinstance(item, Comparison):
                accepted[item.id] = ComparisonRecord(**dict(item))
                if item.supersedes is not None:
                    replaced[item.supersedes] = item.id
        return events

    def _earlier(
        self, item: Comparison, accepted: dict[str, ComparisonRecord], replaced: dict[str, str]
    ) -> ComparisonRecord | None:
        """The comparison a re-vote replaces, as this batch has left it so far."""
        if item.supersedes is None:
            return None
        earlier = accepted.get(item.supersedes) or self.comparisons.earlier(item)
        if earlier is not None and item.supersedes in replaced:
            return earlier.model_copy(update={"superseded_by": replaced[item.supersedes]})
        return earlier

    def _payload(
        self,
        item: Item,
        runs: dict[str, Run],
        configs: dict[str, dict[str, Config]],
        settings: dict[str, ProjectSettings],
    ) -> NewEvent:
        if isinstance(item, Run):
            return NewEvent(run_event(item), item.id)
        if isinstance(item, Comparison):
            check_candidates(item, runs)
            return NewEvent(ComparisonRecorded(comparison=item), item.id)
        run = runs.get(item.run_id)
        if run is None:
            raise NotFoundError(f"no run with id {item.run_id}", details={"run_id": item.run_id})
        if run.project not in configs:
            configs[run.project] = self.store.feedback_configs(run.project)
            settings[run.project] = self.store.get_project(run.project).settings
        feedback = self.feedback.build(
            run,
            key=item.key,
            configs=configs[run.project],
            settings=settings[run.project],
            **item.rating(),
        )
        return self.feedback.new_event(feedback, settings[run.project])


def _kind(payload: EventPayload) -> str:
    return _TYPE_OF_EVENT[payload.type]
