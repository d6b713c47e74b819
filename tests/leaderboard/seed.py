"""A project with votes of every kind, written through the services as the app writes them.

Known by construction: which battles count, which are dropped and why.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tuneback.domain import Candidate, ChatMessage, Comparison, Run
from tuneback.services.comparisons import ComparisonService
from tuneback.services.feedback import FeedbackService
from tuneback.services.runs import RunService
from tuneback.storage import Store

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
STRENGTH = {"atlas": 1.0, "birch": 0.4, "cedar": 0.0, "dune": -0.6}


@dataclass
class Votes:
    counted: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    both_bad: int = 0
    runs: list[Run] = field(default_factory=list)


def seed_votes(store: Store, *, project: str, battles: int = 120) -> Votes:
    rng = random.Random(11)
    runs, comparisons = RunService(store), ComparisonService(store)
    feedback = FeedbackService(store)
    votes = Votes()
    moment = START

    def run(model: str, status: str = "ok", tags: tuple[str, ...] = ()) -> Run:
        nonlocal moment
        moment += timedelta(minutes=7)
        made = runs.log_run(
            Run(
                project=project,
                model=model,
                inputs=[ChatMessage(role="user", content="Name a tree.")],
                output="An oak" + " tree" * rng.randint(0, 40),
                status=status,  # type: ignore[arg-type]
                error="the model failed" if status == "error" else None,
                tags=list(tags),
                started_at=moment,
            )
        )
        votes.runs.append(made)
        return made

    def vote(*sides: Run, when: datetime | None = None, **fields: object) -> Comparison:
        return comparisons.record(
            Comparison(
                project=project,
                candidates=[Candidate(run_id=r.id) for r in sides],
                created_at=when or moment,
                **fields,  # type: ignore[arg-type]
            )
        )

    names = list(STRENGTH)
    for n in range(battles):
        a, b = rng.sample(names, 2)
        edge = STRENGTH[a] - STRENGTH[b]
        roll = rng.random()
        outcome = "a" if roll < 0.7 / (1 + 2.718**-edge) else "b" if roll < 0.7 else None
        outcome = outcome or ("tie" if rng.random() < 0.6 else "both_bad")
        tags = ("prod",) if n % 3 == 0 else ()
        metadata = {"category": "code"} if n % 4 == 0 else {}
        vote(run(a, tags=tags), run(b, tags=tags), outcome=outcome, mode="anonymous",
             user=f"u{n % 5}", metadata=metadata)  # fmt: skip
        votes.counted += 1
        votes.both_bad += outcome == "both_bad"
    # A ranking of three: three battles, atlas over cedar over dune.
    first, second, third = run("cedar"), run("atlas"), run("dune")
    vote(first, second, third, ranking=[second.id, first.id, third.id], mode="anonymous")
    votes.counted += 3
    # A ranking with an errored answer: only the pair of good answers counts.
    good, failed, other = run("birch"), run("atlas", "error"), run("dune")
    vote(good, failed, other, ranking=[failed.id, good.id, other.id], mode="anonymous")
    votes.counted += 1
    votes.dropped["failed"] = 2
    # A side cut off (cancelled) or errored in a pair: dropped.
    vote(run("atlas", "cancelled"), run("dune"), outcome="a", mode="anonymous")
    vote(run("birch"), run("cedar", "error"), outcome="b", mode="anonymous")
    votes.dropped["failed"] += 2
    # The same model twice (resampled): not a battle between models.
    vote(run("cedar"), run("cedar"), outcome="a", mode="resample")
    votes.dropped["self"] = 1
    # Named votes and a comparison logged without a mode: off the main board.
    vote(run("dune"), run("atlas"), outcome="a", mode="named")
    vote(run("dune"), run("birch"), outcome="a")
    votes.dropped["not_anonymous"] = 2
    # A re-vote replaces the first vote: only the second counts.
    x, y = run("birch"), run("dune")
    first_vote = vote(x, y, outcome="b", mode="anonymous", user="u9")
    vote(x, y, outcome="a", mode="anonymous", user="u9", supersedes=first_vote.id)
    votes.counted += 1
    # Single-answer ratings for the second table.
    for i, made in enumerate(votes.runs[:60]):
        if made.status == "ok":
            feedback.record(run_id=made.id, key="thumbs", value="👍" if i % 3 else "👎")
        if i % 2 == 0 and made.status == "ok":
            feedback.record(run_id=made.id, key="stars", value=1 + i % 5)
    return votes
