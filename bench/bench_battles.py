"""A battle of two models against the chat's own cost of answering twice, and a vote's cost.

Each round asks two scripted models (no model time: what is measured is
tuneback's) for 100 chunks each. The baseline is the chat answering the same
question twice in a row (two recorded replies); a battle starts a conversation,
stores the question and runs both sides at once, each recorded as a run by the
same recorder. A vote reads the round's runs, looks for the person's earlier
vote and records the comparison.

    python bench/bench_battles.py [--rounds 100] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from targets import stores
from tuneback.models import ScriptedModel
from tuneback.services.battle_votes import BattleVotes, Vote
from tuneback.services.battles import BattleService, run_battle
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.comparisons import ComparisonService
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store

ANSWER = " ".join(f"w{i}" for i in range(100))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def measure(store: Store, rounds: int) -> dict[str, list[float]]:
    red, blue = ScriptedModel(spec="scripted:red"), ScriptedModel(spec="scripted:blue")
    models = ModelCatalog([red, blue])
    chat = ChatService(store, models)
    votes = BattleVotes(
        BattleService(chat, models), ComparisonService(store), FeedbackService(store)
    )
    found: dict[str, list[float]] = {"two chat replies": [], "battle of two": [], "vote": []}

    def two_replies() -> None:
        conversation = chat.start_conversation(project="bench", user="u", model="scripted:red")
        question = chat.add_user_message(conversation.id, "q")
        for _ in range(2):
            red.enqueue(ANSWER)
            list(chat.reply(question.id))

    for _ in range(rounds):
        found["two chat replies"].append(timed(two_replies))
        red.enqueue(ANSWER)
        blue.enqueue(ANSWER)
        battle = None

        def fight() -> None:
            nonlocal battle
            battle = run_battle(
                chat, "q", ["scripted:red", "scripted:blue"], project="bench", user="u"
            )

        found["battle of two"].append(timed(fight))
        assert battle is not None
        started = time.perf_counter()
        votes.vote(battle.round_id, Vote(outcome="a"), user="u")
        found["vote"].append((time.perf_counter() - started) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for dialect, store in stores(only=args.only):
        found = measure(store, args.rounds)
        baseline = statistics.median(found["two chat replies"])
        print(f"{dialect}: {args.rounds} rounds, median ms (ratio to two chat replies)")
        for name, samples in found.items():
            median = statistics.median(samples)
            print(f"  {name:<17} {median:7.1f} ms  x{median / baseline:.2f}")


if __name__ == "__main__":
    main()
