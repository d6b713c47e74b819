"""Comparisons: a person judged two (or ranked several) answers to the same prompt."""

from __future__ import annotations

from tuneback.domain import Comparison, ComparisonRecord, ComparisonRecorded, Run
from tuneback.errors import ConflictError, NotFoundError, ValidationError
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


def check_supersedes(comparison: Comparison, earlier: Comparison | None) -> None:
    """A re-vote replaces a comparison of the same project, person and candidates.

    ``earlier`` is the comparison named by ``comparison.supersedes`` (None when
    there is no such comparison). One already replaced by another re-vote is a
    conflict: the newest vote is the one to replace.
    """
    wanted = comparison.supersedes
    if wanted is None:
        return
    details = {"supersedes": wanted}
    if earlier is None or earlier.project != comparison.project:
        raise NotFoundError(f"no comparison with id {wanted} to supersede", details=details)
    if earlier.user != comparison.user:
        raise ConflictError(
            f"comparison {wanted} was made by another user; a re-vote replaces one's own vote",
            details=details,
        )
    if sorted(c.run_id for c in earlier.candidates) != sorted(
        c.run_id for c in comparison.candidates
    ):
        raise ConflictError(
            f"comparison {wanted} judged other runs; a re-vote judges the same candidates",
            details=details,
        )
    replaced_by = earlier.superseded_by if isinstance(earlier, ComparisonRecord) else None
    if replaced_by is not None and replaced_by != comparison.id:
        raise ConflictError(
            f"comparison {wanted} was already superseded by {replaced_by}",
            details={**details, "superseded_by": replaced_by},
        )


class ComparisonService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.queries = Queries(store)

    def earlier(self, comparison: Comparison) -> ComparisonRecord | None:
        """The stored comparison that ``comparison`` supersedes, if it names one that exists."""
        if comparison.supersedes is None:
            return None
        try:
            return self.store.get_comparison(comparison.supersedes)
        except NotFoundError:
            return None

    def record(self, comparison: Comparison) -> Comparison:
        """Store a comparison of runs that exist; retrying with its id changes nothing."""
        runs = self.queries.runs_by_ids([c.run_id for c in comparison.candidates])
        check_candidates(comparison, runs)
        check_supersedes(comparison, self.earlier(comparison))
        payload = ComparisonRecorded(comparison=comparison)
        stored = self.store.append(payload, event_id=comparison.id)
        assert isinstance(stored.payload, ComparisonRecorded)
        return stored.payload.comparison
