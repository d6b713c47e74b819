"""The battle runner: sides stream at once, and every side becomes a run like any chat answer."""

from __future__ import annotations

import random
import threading

import pytest

from tuneback.domain import ChatMessage, RunCompleted, RunFailed
from tuneback.errors import ModelError, NotFoundError, ValidationError
from tuneback.models import ScriptedModel
from tuneback.services.battles import BattleService, run_battle
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.storage import Store


@pytest.fixture
def red() -> ScriptedModel:
    return ScriptedModel(spec="scripted:red", name="Red")


@pytest.fixture
def blue() -> ScriptedModel:
    return ScriptedModel(spec="scripted:blue", name="Blue")


@pytest.fixture
def chat(store: Store, red: ScriptedModel, blue: ScriptedModel) -> ChatService:
    return ChatService(store, ModelCatalog([red, blue]))


def _run_summary(chat: ChatService, run_id: str) -> tuple[object, ...]:
    run = chat.store.get_run(run_id)
    return (run.model, run.status, run.output, run.error, run.metadata)


def test_run_battle_records_each_side_as_a_run(
    chat: ChatService, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("crimson red")
    blue.enqueue("deep blue sea")
    battle = run_battle(chat, "Name a colour.", ["scripted:red", "scripted:blue"], user="ann")

    assert [(s.label, s.model, s.output, s.status) for s in battle.sides] == [
        ("A", "scripted:red", "crimson red", "ok"),
        ("B", "scripted:blue", "deep blue sea", "ok"),
    ]
    assert [_run_summary(chat, s.run_id) for s in battle.sides] == [
        (
            "scripted:red",
            "ok",
            "crimson red",
            None,
            {"battle_round": battle.round_id, "battle_side": 0, "usage_estimated": True},
        ),
        (
            "scripted:blue",
            "ok",
            "deep blue sea",
            None,
            {"battle_round": battle.round_id, "battle_side": 1, "usage_estimated": True},
        ),
    ]
    assert battle.prompt == [ChatMessage(role="user", content="Name a colour.")]
    assert [c.content for c in red.calls[0].messages] == ["Name a colour."]
    conversation, runs = BattleService(chat, chat.models).round_runs(battle.round_id)
    assert conversation.metadata == {
        "battle": {"mode": "named", "models": ["scripted:red", "scripted:blue"]}
    }
    assert [r.id for r in runs] == [s.run_id for s in battle.sides]
    # Both answers are sibling branches under the one question.
    messages = chat.store.conversation_messages(conversation.id)
    assert [(m.role, m.parent_id) for m in messages] == [
        ("user", None),
        ("assistant", battle.round_id),
        ("assistant", battle.round_id),
    ]


def test_a_side_that_fails_is_an_error_run_and_the_other_finishes(
    chat: ChatService, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("half an", error_after=1)
    blue.enqueue("a full answer")
    battle = BattleService(chat, chat.models).start("Hi", models=["scripted:red", "scripted:blue"])
    streamed = list(battle.stream())
    by_side = [[text for side, text in streamed if side == index] for index in (0, 1)]
    assert by_side == [["half "], ["a ", "full ", "answer"]]
    assert [(s.status, s.output, s.error) for s in battle.sides] == [
        ("error", "half ", "scripted failure after 1 chunks"),
        ("ok", "a full answer", None),
    ]
    types = [type(e.payload) for e in chat.store.events_after(0)]
    assert (types.count(RunFailed), types.count(RunCompleted)) == (1, 1)


def test_stopping_a_battle_cancels_every_side(
    chat: ChatService, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("one two three four five six", delay=0.05)
    blue.enqueue("seven eight nine ten eleven twelve", delay=0.05)
    battle = BattleService(chat, chat.models).start(
        "Count", models=["scripted:red", "scripted:blue"]
    )
    seen = threading.Event()
    for _side, _text in battle.stream():
        if not seen.is_set():
            seen.set()
            battle.cancel()
    assert [s.status for s in battle.sides] == ["cancelled", "cancelled"]
    assert all(len(s.output.split()) < 6 for s in battle.sides)
    assert [chat.store.get_run(s.run_id).status for s in battle.sides] == ["cancelled", "cancelled"]


def test_closing_the_stream_early_stores_every_side_as_cancelled(
    chat: ChatService, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("one two three four", delay=0.05)
    blue.enqueue("five six seven eight", delay=0.05)
    battle = BattleService(chat, chat.models).start(
        "Count", models=["scripted:red", "scripted:blue"]
    )
    stream = battle.stream()
    next(stream)
    stream.close()
    assert [chat.store.get_run(s.run_id).status for s in battle.sides] == ["cancelled", "cancelled"]


def test_modes_pick_their_models(chat: ChatService) -> None:
    service = BattleService(chat, chat.models, rng=random.Random(3))
    picked = service.pick("anonymous")
    assert sorted(picked) == ["scripted:blue", "scripted:red"]
    assert service.pick("resample", ["scripted:blue"], sides=3) == ["scripted:blue"] * 3
    assert service.pick("resample") == ["scripted:red", "scripted:red"]
    refusals = {}
    for name, call in {
        "anonymous, three of two": lambda: service.pick("anonymous", sides=3),
        "named, one model": lambda: service.pick("named", ["scripted:red"]),
        "five sides": lambda: service.pick("named", sides=5),
        "unknown model": lambda: service.pick("named", ["scripted:red", "gpt-9"]),
    }.items():
        with pytest.raises((ValidationError, NotFoundError)) as caught:
            call()
        refusals[name] = type(caught.value).__name__
    assert refusals == {
        "anonymous, three of two": "ValidationError",
        "named, one model": "ValidationError",
        "five sides": "ValidationError",
        "unknown model": "NotFoundError",
    }


def test_a_follow_up_battles_the_same_models_on_the_chosen_history(
    chat: ChatService, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("red")
    blue.enqueue("blue")
    service = BattleService(chat, chat.models)
    first = service.start(
        [
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Hello"),
            ChatMessage(role="assistant", content="Hi there"),
            ChatMessage(role="user", content="A colour?"),
        ],
        models=["scripted:red", "scripted:blue"],
    ).run()
    red.enqueue("still red")
    blue.enqueue("now green")
    chosen = first.sides[1].reply.message
    assert chosen is not None
    second = service.follow_up(chosen.id, "Why?").run()
    assert [s.output for s in second.sides] == ["still red", "now green"]
    assert [(m.role, m.content) for m in red.calls[1].messages] == [
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "Hi there"),
        ("user", "A colour?"),
        ("assistant", "blue"),
        ("user", "Why?"),
    ]
    assert second.conversation.id == first.conversation.id


def test_a_model_error_before_any_text_keeps_the_battle_going(
    chat: ChatService, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue(error=ModelError("backend down"))
    blue.enqueue("fine")
    battle = run_battle(chat, "Hi", ["scripted:red", "scripted:blue"])
    assert [(s.status, s.error, s.reply.message is None) for s in battle.sides] == [
        ("error", "backend down", True),
        ("ok", None, False),
    ]
