"""Review queues: serve runs to reviewers one at a time, collect their answers, measure agreement.

An item is reserved (leased) for the reviewer it is served to until they answer,
skip, or the lease runs out, so two reviewers never work on the same run at
once. Answers are feedback events (``source="annotator"``, metadata naming the
queue), appended together so a review is all stored or not at all. Reviewers do
not see each other's answers on an item until it has all the reviews it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tuneback.domain import (
    FeedbackRecord,
    ProjectSettings,
    QueueRule,
    ReviewQueue,
    ReviewQueueCreated,
    Run,
    utcnow,
    validate,
)
from tuneback.domain.agreement import (
    AgreementLevel,
    agreement_level,
    cohen_kappa,
    krippendorff_alpha,
)
from tuneback.domain.feedback import BUILTIN_CONFIGS, RawValue
from tuneback.errors import ConflictError, ValidationError
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store
from tuneback.storage.review import QueueCounts, QueueItem, ReviewStore

Clock = Callable[[], datetime]

REVIEWER_PERMISSIONS = ProjectSettings()
"""Reviewers are not bound by a project's end-user policy (locked ratings, latest answer only):
reviewing older answers and re-rating is their job."""


@dataclass(frozen=True)
class ReviewItem:
    """A run served to a reviewer, reserved for them until ``expires_at``."""

    queue: ReviewQueue
    run: Run
    expires_at: datetime
    context: list[FeedbackRecord]
    """Feedback on the run from outside this queue (what the user said): shown as context."""


@dataclass(frozen=True)
class KeyAgreement:
    key: str
    level: AgreementLevel
    items: int
    """Items with answers from two or more reviewers: the ones agreement is measured on."""
    reviewers: list[str]
    alpha: float | None
    kappa: float | None
    note: str | None = None


@dataclass(frozen=True)
class ReviewerProgress:
    reviewer: str
    reviewed: int
    skipped: int
    holding: str | None
    """The run they hold a live lease on, if any."""


@dataclass(frozen=True)
class QueueProgress:
    queue: ReviewQueue
    counts: QueueCounts
    reviewers: list[ReviewerProgress] = field(default_factory=list)

    @property
    def done_fraction(self) -> float:
        return self.counts.completed / self.counts.total if self.counts.total else 0.0


class ReviewService:
    """Queues, leases, reviews and agreement on ``store``; ``clock`` is injectable for tests."""

    def __init__(
        self,
        store: Store,
        feedback: FeedbackService | None = None,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.feedback = feedback or FeedbackService(store)
        self.reviews = ReviewStore(store)
        self.clock = clock

    # -- queues -------------------------------------------------------------------

    def create_queue(
        self,
        *,
        project: str,
        name: str,
        keys: Sequence[str],
        rule: QueueRule | Mapping[str, Any] | None = None,
        reviewers_per_item: int = 1,
        lease_seconds: int = 600,
        description: str | None = None,
        created_by: str | None = None,
        queue_id: str | None = None,
    ) -> ReviewQueue:
        data: dict[str, Any] = {
            "project": project,
            "name": name,
            "keys": list(keys),
            "rule": rule if rule is not None else {},
            "reviewers_per_item": reviewers_per_item,
            "lease_seconds": lease_seconds,
            "description": description or None,
            "created_by": created_by,
        }
        if queue_id is not None:
            data["id"] = queue_id
        queue = validate(ReviewQueue, data, what="review queue")
        self.store.append(ReviewQueueCreated(queue=queue), event_id=queue.id)
        return self.reviews.get_queue(queue.id)

    def get(self, queue_id: str) -> ReviewQueue:
        return self.reviews.get_queue(queue_id)

    def queues(self, project: str) -> list[QueueProgress]:
        return [self.progress(queue) for queue in self.reviews.list_queues(project)]

    # -- serving items ------------------------------------------------------------

    def next_item(self, queue_id: str, reviewer: str) -> ReviewItem | None:
        """The item this reviewer works on now: the one they hold, else the oldest free one.

        None when nothing is left for them (all done, skipped, or held by others).
        """
        queue = self.get(queue_id)
        reviewer = _named(reviewer)
        now = self.clock()
        expires = now + timedelta(seconds=queue.lease_seconds)
        for run_id in self.reviews.held_by(queue.id, reviewer, now):
            if self.reviews.lease(queue, run_id, reviewer, now, expires):
                return self._item(queue, run_id, expires)
        # Candidates can be taken by others between the read and the lease;
        # losing a race moves on to the next one.
        for _ in range(5):
            candidates = self.reviews.candidates(queue, reviewer, now)
            if not candidates:
                return None
            for run_id in candidates:
                if self.reviews.lease(queue, run_id, reviewer, now, expires):
                    return self._item(queue, run_id, expires)
        return None

    def _item(self, queue: ReviewQueue, run_id: str, expires: datetime) -> ReviewItem:
        answered_here = {f.id for f in self.reviews.answers(queue.id, [run_id])}
        context = [f for f in self.store.feedback_for_run(run_id) if f.id not in answered_here]
        return ReviewItem(
            queue=queue, run=self.store.get_run(run_id), expires_at=expires, context=context
        )

    def submit(
        self,
        queue_id: str,
        run_id: str,
        reviewer: str,
        *,
        answers: Mapping[str, RawValue] | None = None,
        comment: str | None = None,
        correction: str | None = None,
    ) -> list[FeedbackRecord]:
        """Store one reviewer's review of an item and free it; refuses if they lost the item."""
        queue = self.get(queue_id)
        reviewer = _named(reviewer)
        answers = {k: v for k, v in (answers or {}).items() if v is not None and v != ""}
        unknown = sorted(set(answers) - set(queue.rating_keys))
        if unknown:
            raise ValidationError(
                f"this queue does not ask for {', '.join(unknown)}",
                details={"asked": queue.keys},
            )
        missing = [key for key in queue.rating_keys if key not in answers]
        if missing:
            raise ValidationError(
                f"answer {', '.join(missing)} before submitting", details={"missing": missing}
            )
        if not answers and not (comment or "").strip() and not (correction or "").strip():
            raise ValidationError("write a comment or a correction before submitting")
        now = self.clock()
        expires = now + timedelta(seconds=queue.lease_seconds)
        if not self.reviews.lease(queue, run_id, reviewer, now, expires):
            raise self._lost(queue, run_id, reviewer, now)
        run = self.store.get_run(run_id)
        configs = self.store.feedback_configs(run.project)
        common: dict[str, Any] = {
            "user": reviewer,
            "source": "annotator",
            "metadata": {"queue_id": queue.id},
            "configs": configs,
            "settings": REVIEWER_PERMISSIONS,
        }
        built = [self.feedback.build(run, key=k, value=v, **common) for k, v in answers.items()]
        if comment and comment.strip():
            built.append(self.feedback.build(run, key="comment", comment=comment.strip(), **common))
        if correction and correction.strip():
            built.append(
                self.feedback.build(run, key="correction", correction=correction, **common)
            )
        self.store.append_many([self.feedback.new_event(f) for f in built])
        self.reviews.release(queue.id, run_id, reviewer)
        return [self.store.get_feedback(f.id) for f in built]

    def _lost(self, queue: ReviewQueue, run_id: str, reviewer: str, now: datetime) -> Exception:
        done = self.reviews.reviewers_of(queue.id, run_id)
        if reviewer in done:
            return ConflictError("you already reviewed this item", details={"run_id": run_id})
        holder = self.reviews.lease_holder(queue.id, run_id, now)
        if holder is not None:
            return ConflictError(
                f"{holder} is reviewing this item now (your reservation ran out); "
                "open the next item",
                details={"run_id": run_id, "holder": holder},
            )
        return ConflictError(
            "this item already has all the reviews it needs; open the next item",
            details={"run_id": run_id},
        )

    def skip(self, queue_id: str, run_id: str, reviewer: str) -> None:
        """Pass on an item: it is not served to this reviewer again, and others can take it."""
        queue = self.get(queue_id)
        self.reviews.skip(queue.id, run_id, _named(reviewer), self.clock())

    def release(self, queue_id: str, run_id: str, reviewer: str) -> None:
        """Give an item back without skipping it (the reviewer stops for now)."""
        self.reviews.release(queue_id, run_id, _named(reviewer))

    # -- progress and agreement -----------------------------------------------------------

    def progress(self, queue: ReviewQueue | str) -> QueueProgress:
        queue = self.get(queue) if isinstance(queue, str) else queue
        counts = self.reviews.counts(queue, self.clock())
        names = sorted(set(counts.reviewed_by) | set(counts.skipped_by) | set(counts.holding))
        rows = [
            ReviewerProgress(
                reviewer=name,
                reviewed=counts.reviewed_by.get(name, 0),
                skipped=counts.skipped_by.get(name, 0),
                holding=counts.holding.get(name),
            )
            for name in names
        ]
        rows.sort(key=lambda row: (-row.reviewed, row.reviewer))
        return QueueProgress(queue=queue, counts=counts, reviewers=rows)

    def items(self, queue_id: str, *, limit: int = 50, offset: int = 0) -> list[QueueItem]:
        return self.reviews.items(self.get(queue_id), self.clock(), limit=limit, offset=offset)

    def visible_answers(
        self, queue: ReviewQueue, items: Sequence[QueueItem]
    ) -> dict[str, list[FeedbackRecord]]:
        """Answers on completed items only: until then reviewers must not sway each other."""
        done = [item.run.id for item in items if item.status == "completed"]
        found: dict[str, list[FeedbackRecord]] = {}
        for answer in self.reviews.answers(queue.id, done) if done else []:
            found.setdefault(answer.run_id or "", []).append(answer)
        return found

    def agreement(self, queue_id: str) -> list[KeyAgreement]:
        """Agreement per rating key, over items rated by two reviewers or more."""
        queue = self.get(queue_id)
        latest: dict[tuple[str, str, str], FeedbackRecord] = {}
        for answer in self.reviews.answers(queue.id):
            if answer.user is not None and answer.run_id is not None:
                latest[(answer.key, answer.run_id, answer.user)] = answer
        configs = self.store.feedback_configs(queue.project)
        results = []
        for key in queue.rating_keys:
            config = configs.get(key) or BUILTIN_CONFIGS.get(key)
            level = agreement_level(key, config)
            units: dict[str, dict[str, Any]] = {}
            for (answer_key, run_id, user), answer in latest.items():
                value = _agreement_value(answer, level)
                if answer_key == key and value is not None:
                    units.setdefault(run_id, {})[user] = value
            pairable = {run: by for run, by in units.items() if len(by) >= 2}
            reviewers = sorted({user for by in pairable.values() for user in by})
            alpha = krippendorff_alpha([list(by.values()) for by in pairable.values()], level)
            kappa, note = None, None
            if len(reviewers) == 2:
                first, second = reviewers
                kappa = cohen_kappa([(by[first], by[second]) for by in pairable.values()])
            elif len(reviewers) > 2:
                note = "Cohen's kappa compares exactly two reviewers; alpha takes any number"
            if not pairable:
                note = "needs items answered by two reviewers or more"
            elif alpha is None:
                note = "every answer was the same, so agreement beyond chance is undefined"
            results.append(KeyAgreement(key, level, len(pairable), reviewers, alpha, kappa, note))
        return results


def _agreement_value(answer: FeedbackRecord, level: str) -> Any:
    if level != "nominal":
        # Scores rank faces and stars in order, and measure interval keys.
        return answer.score
    # Nominal: the category. Scores name categories uniquely for thumbs and
    # faces (👍 and "up" are the same answer); labels without a score are kept.
    return answer.score if answer.score is not None else str(answer.value)


def _named(reviewer: str) -> str:
    name = reviewer.strip()
    if not name:
        raise ValidationError("reviews need the reviewer's name (add ?user=yourname to the URL)")
    return name
