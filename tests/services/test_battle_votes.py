"""Votes on battle rounds: the comparison recorded, re-votes, the daily cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tuneback.errors import RateLimitedError, ValidationError
from tuneback.models import ScriptedModel
from tuneback.services.battle_votes import BattleVotes, Vote
from tuneback.services.battles import BattleService
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.comparisons import ComparisonService
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def votes(store: Store) -> BattleVotes:
    models = ModelCatalog([ScriptedModel(spec="scripted:red"), ScriptedModel(spec="scripted:blue")])
    for adapter in models:
        assert isinstance(adapter, ScriptedModel)
        for n in range(4):
            adapter.enqueue(f"{adapter.spec} answer {n}")
    chat = ChatService(store, models)
    battles = BattleService(chat, models)
    return BattleVotes(battles, ComparisonService(store), FeedbackService(store), daily_cap=2)


def _round(votes: BattleVotes) -> str:
    battle = votes.battles.start(
        "Hi", models=["scripted:red", "scripted:blue"], user="ann", project="p"
    )
    return battle.run().round_id


def test_the_cap_counts_votes_not_revotes_and_resets_at_midnight(votes: BattleVotes) -> None:
    first, second, third = _round(votes), _round(votes), _round(votes)
    assert votes.remaining("p", "ann", now=NOON) == 2
    votes.vote(first, Vote(outcome="a"), user="ann", now=NOON)
    again = votes.vote(first, Vote(outcome="tie"), user="ann", now=NOON)
    votes.vote(second, Vote(outcome="b"), user="ann", now=NOON)
    assert votes.remaining("p", "ann", now=NOON) == 0
    with pytest.raises(RateLimitedError) as refused:
        votes.vote(third, Vote(outcome="a"), user="ann", now=NOON)
    assert (refused.value.retry_after, refused.value.details) == (12 * 3600, {"daily_cap": 2})
    # A re-vote replaces a vote, so it is still allowed at the cap.
    latest = votes.vote(first, Vote(outcome="both_bad"), user="ann", now=NOON)
    assert (latest.comparison.supersedes, latest.comparison.mode) == (again.comparison.id, "named")
    # Someone else, and the next day, start afresh.
    assert votes.remaining("p", "bob", now=NOON) == 2
    tomorrow = NOON.replace(day=5)
    votes.vote(third, Vote(outcome="a"), user="ann", now=tomorrow)
    assert votes.remaining("p", "ann", now=tomorrow) == 1


def test_a_vote_must_fit_the_round(votes: BattleVotes) -> None:
    round_id = _round(votes)
    messages = {}
    for name, vote in {
        "nothing": Vote(),
        "ranking of unknown labels": Vote(ranking=["A", "C"]),
    }.items():
        with pytest.raises(ValidationError) as refused:
            votes.vote(round_id, vote, user="ann", now=NOON)
        messages[name] = refused.value.message
    assert messages == {
        "nothing": "vote with an outcome (a, b, tie, both_bad) or a ranking",
        "ranking of unknown labels": "rank every answer once, best first: A, B",
    }
