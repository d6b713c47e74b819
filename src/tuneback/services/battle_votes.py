"""Votes on a battle round: the comparison they record, re-votes, the daily cap, the reveal.

A vote names sides by label (A, B, …); the comparison stores their runs with
the models that answered, how the battle was set up (``mode``) and, when the
person had already voted on this round, the comparison it ``supersedes``, so
the newest vote counts and the history stays in the log. An ideal answer
written with the vote is stored as a correction of the preferred answer (the
first side when no side is preferred) through the feedback service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tuneback.domain import (
    Candidate,
    Comparison,
    ComparisonRecord,
    FeedbackRecord,
    Outcome,
    Run,
    utcnow,
)
from tuneback.errors import RateLimitedError, ValidationError
from tuneback.services.battles import LABELS, BattleService, battle_setup
from tuneback.services.comparisons import ComparisonService
from tuneback.services.feedback import FeedbackService
from tuneback.storage.queries import Queries


@dataclass(frozen=True)
class Vote:
    """What a person said about a round: an outcome for two sides, or a ranking of labels."""

    outcome: Outcome | None = None
    ranking: list[str] | None = None
    comment: str | None = None
    ideal: str | None = None


@dataclass(frozen=True)
class VoteResult:
    comparison: Comparison
    runs: list[Run]
    correction: FeedbackRecord | None


class BattleVotes:
    def __init__(
        self,
        battles: BattleService,
        comparisons: ComparisonService,
        feedback: FeedbackService,
        *,
        daily_cap: int = 0,
    ) -> None:
        self.battles = battles
        self.comparisons = comparisons
        self.feedback = feedback
        self.queries = Queries(comparisons.store)
        self.daily_cap = daily_cap

    def current_vote(self, runs: list[Run], user: str) -> ComparisonRecord | None:
        """The person's vote on these runs that no re-vote has replaced yet."""
        ids = sorted(run.id for run in runs)
        page = self.queries.comparisons(project=runs[0].project, run_id=runs[0].id, limit=500)
        for comparison in page.data:
            if (
                comparison.user == user
                and comparison.current
                and sorted(c.run_id for c in comparison.candidates) == ids
            ):
                return comparison
        return None

    def remaining(self, project: str, user: str, *, now: datetime | None = None) -> int | None:
        """Votes left today (None: no cap)."""
        if not self.daily_cap:
            return None
        midnight = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
        used = self.queries.current_comparisons_by(project=project, user=user, since=midnight)
        return max(0, self.daily_cap - used)

    def vote(
        self, round_id: str, vote: Vote, *, user: str, now: datetime | None = None
    ) -> VoteResult:
        conversation, runs = self.battles.round_runs(round_id)
        setup = battle_setup(conversation)
        assert setup is not None  # round_runs found a battle
        labels = LABELS[: len(runs)]
        earlier = self.current_vote(runs, user)
        if earlier is None:
            self._check_cap(conversation.project, user, now or utcnow())
        ranking = None
        if vote.ranking is not None:
            if sorted(vote.ranking) != sorted(labels):
                raise ValidationError(
                    f"rank every answer once, best first: {', '.join(labels)}",
                    details={"ranking": vote.ranking},
                )
            ranking = [runs[labels.index(label)].id for label in vote.ranking]
        elif vote.outcome is None:
            raise ValidationError("vote with an outcome (a, b, tie, both_bad) or a ranking")
        elif len(runs) != 2:
            raise ValidationError(f"this battle has {len(runs)} answers: rank them")
        prompt = runs[0].inputs if isinstance(runs[0].inputs, list) else []
        comparison = Comparison(
            project=conversation.project,
            prompt=prompt,
            candidates=[Candidate(run_id=run.id, model=run.model) for run in runs],
            outcome=None if ranking else vote.outcome,
            ranking=ranking,
            user=user,
            comment=vote.comment or None,
            mode=setup[0],
            supersedes=earlier.id if earlier else None,
            metadata={"conversation_id": conversation.id, "round_id": round_id},
            created_at=now or utcnow(),
        )
        recorded = self.comparisons.record(comparison)
        correction = None
        if vote.ideal and vote.ideal.strip():
            winner = recorded.winner
            target = winner.run_id if winner else runs[0].id
            correction = self.feedback.record(
                run_id=target,
                key="correction",
                kind="correction",
                correction=vote.ideal,
                user=user,
                source="end_user",
                metadata=_about(recorded),
            )
        return VoteResult(recorded, runs, correction)

    def _check_cap(self, project: str, user: str, now: datetime) -> None:
        left = self.remaining(project, user, now=now)
        if left is None or left > 0:
            return
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        raise RateLimitedError(
            f"you have made {self.daily_cap} comparisons today, the most one person may "
            "make in a day (TUNEBACK_COMPARE_DAILY_VOTES); come back after midnight UTC",
            retry_after=max(1, int((midnight - now).total_seconds())),
            details={"daily_cap": self.daily_cap},
        )


def _about(comparison: Comparison) -> dict[str, Any]:
    return {"comparison_id": comparison.id}
