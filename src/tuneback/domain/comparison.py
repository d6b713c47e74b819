"""Comparisons: a person chose between two (or ranked several) answers to the same prompt."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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

Outcome = Literal["a", "b", "tie", "both_bad"]

# How a battle was set up: two models picked at random with their names hidden
# until the vote, two models the person named, or one model sampled twice.
# None: the comparison was logged (through the API or SDK) without saying.
BattleMode = Literal["anonymous", "named", "resample"]


class Candidate(DomainModel):
    run_id: Identifier
    model: str | None = None


class Comparison(DomainModel):
    """``outcome`` judges a pair (candidates[0] is "a"); ``ranking`` orders more, best first."""

    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    prompt: list[ChatMessage] = Field(default_factory=list)
    candidates: list[Candidate] = Field(min_length=2)
    outcome: Outcome | None = None
    ranking: list[Identifier] | None = None
    user: str | None = None
    comment: str | None = None
    mode: BattleMode | None = None
    # A re-vote names the comparison it replaces (same person, same candidates);
    # the old one stays in the log and its projection row is marked superseded.
    supersedes: Identifier | None = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _judged(self) -> Comparison:
        run_ids = [c.run_id for c in self.candidates]
        if len(set(run_ids)) != len(run_ids):
            raise ValueError("a comparison's candidates must be different runs")
        if self.outcome is None and self.ranking is None:
            raise ValueError("a comparison needs an outcome (a/b/tie/both_bad) or a ranking")
        if self.outcome is not None and len(self.candidates) != 2:
            raise ValueError("an outcome judges exactly two candidates; rank more than two")
        if self.ranking is not None and sorted(self.ranking) != sorted(run_ids):
            raise ValueError("a ranking must list every candidate's run_id exactly once")
        if self.supersedes is not None and self.supersedes == self.id:
            raise ValueError("a comparison cannot supersede itself")
        return self

    @property
    def winner(self) -> Candidate | None:
        if self.outcome == "a":
            return self.candidates[0]
        if self.outcome == "b":
            return self.candidates[1]
        if self.ranking:
            return next(c for c in self.candidates if c.run_id == self.ranking[0])
        return None


class ComparisonRecord(Comparison):
    """A comparison as the store holds it: ``superseded_by`` marks one a re-vote replaced."""

    superseded_by: Identifier | None = None

    @property
    def current(self) -> bool:
        return self.superseded_by is None
