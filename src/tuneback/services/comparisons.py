"""Comparisons: a person judged two (or ranked several) answers to the same prompt."""

from __future__ import annotations

from tuneback.domain import Comparison, ComparisonRecorded, Run
from tuneback.errors import NotFoundError, ValidationError
from tuneback.storage import Store
from tuneback.storage.queries import Queries


def check_candidates(comparison: Comparison, runs: dict[str, Run]) -> None:
    """Every candidate must be a run of the comparison's project."""
    for candidate in comparison.candidates:
        run = runs.get(candidate.run_id)
        if run is None or run.project != comparison.project:
            raise NotFoundError(
                f"no run with id {candidate.run_id}",
                details={"run_id": candidate.run_id},
            )
        if candidate.model is not None and run.model is not None and candidate.model != run.model:
            raise ValidationError(
                f"candidate {candidate.run_id} says model {candidate.model!r} "
                f"but the run used {run.model!r}",
                details={"run_id": candidate.run_id},
            )


class ComparisonService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.queries = Queries(store)

    def record(self, comparison: Comparison) -> Comparison:
        """Store a comparison of runs that exist; retrying with its id changes nothing."""
        runs = self.queries.runs_by_ids([c.run_id for c in comparison.candidates])
        check_candidates(comparison, runs)
        payload = ComparisonRecorded(comparison=comparison)
        stored = self.store.append(payload, event_id=comparison.id)
        assert isinstance(stored.payload, ComparisonRecorded)
        return stored.payload.comparison
