"""Battles: one prompt answered by two to four models (or one model several times) side by side.

A battle is a conversation whose user message gets one answer per side, as
sibling branches: each answer is a chat :class:`~tuneback.services.chat.Reply`,
so it is timed and stored as a Run by the same recorder as every chat answer
(a side that fails is a run with status ``error``, one that is stopped a run
with status ``cancelled``). Each run's metadata names its ``battle_round`` (the
user message) and ``battle_side`` (0 for A), which is how a round is found
again when someone votes. The battle's setup (mode and models, in side order)
is kept in the conversation's metadata, so a follow-up round after the vote
battles the same models again on the chosen side's history.

Without HTTP::

    battle = BattleService(chat, catalog).start("Name a colour", models=["a", "b"])
    battle.run()                   # or: for side, text in battle.stream(): ...
    [side.output for side in battle.sides]
"""

from __future__ import annotations

import queue
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuneback.domain import (
    BattleMode,
    ChatMessage,
    Conversation,
    Message,
    MessageAdded,
    Run,
    RunStatus,
)
from tuneback.errors import ModelError, NotFoundError, ValidationError
from tuneback.models import ModelOptions
from tuneback.services.background import BackgroundWork
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService, Reply

LABELS = ("A", "B", "C", "D")
MAX_SIDES = len(LABELS)
BATTLE_TAG = "battle"
ROUND_KEY = "battle_round"
SIDE_KEY = "battle_side"


@dataclass
class Side:
    """One answer of a battle: the model behind it and the reply being generated."""

    index: int
    model: str
    reply: Reply

    @property
    def label(self) -> str:
        return LABELS[self.index]

    @property
    def run_id(self) -> str:
        return self.reply.run_id

    @property
    def output(self) -> str:
        return self.reply.partial

    @property
    def error(self) -> str | None:
        """Why the side failed, once it has (its run records it too)."""
        return self.reply.call.error

    @property
    def run(self) -> Run | None:
        """The stored run, once the side has finished."""
        return self.reply.run

    @property
    def status(self) -> RunStatus | None:
        return self.reply.run.status if self.reply.run is not None else None


@dataclass
class Battle:
    """A round of a battle: one user message, one reply per side.

    Iterate :meth:`stream` for ``(side index, text)`` as the sides produce it
    (they run at the same time), or call :meth:`run` to wait for all of them.
    :meth:`cancel` stops every side still generating; each keeps what it said.
    """

    conversation: Conversation
    question: Message
    mode: BattleMode
    sides: list[Side]
    background: BackgroundWork = field(default_factory=BackgroundWork, repr=False)
    _started: bool = False

    @property
    def round_id(self) -> str:
        return self.question.id

    @property
    def prompt(self) -> list[ChatMessage]:
        """What the sides were asked: the first side's inputs (history and question)."""
        return self.sides[0].reply.inputs

    def cancel(self) -> None:
        for side in self.sides:
            side.reply.cancel()

    def run(self) -> Battle:
        for _ in self.stream():
            pass
        return self

    def stream(self) -> Iterator[tuple[int, str]]:
        if self._started:
            raise RuntimeError("a battle streams once")
        self._started = True
        chunks: queue.Queue[tuple[int, str | None]] = queue.Queue()
        jobs = [
            self.background.start(
                _pump, side, chunks, name=f"tuneback-battle-{side.run_id}", cancel=side.reply.cancel
            )
            for side in self.sides
        ]
        running = len(jobs)
        try:
            while running:
                index, text = chunks.get()
                if text is None:
                    running -= 1
                else:
                    yield index, text
        finally:
            # The consumer stopped early (a closed page): stop every side, and
            # wait until each one has stored its run.
            if running:
                self.cancel()
            for job in jobs:
                job.join()


def _pump(side: Side, chunks: queue.Queue[tuple[int, str | None]]) -> None:
    try:
        for text in side.reply:
            chunks.put((side.index, text))
    except ModelError:
        pass  # recorded as a failed run by the chat service; Side.error says why
    finally:
        chunks.put((side.index, None))


def battle_setup(conversation: Conversation) -> tuple[BattleMode, list[str]] | None:
    """The mode and models (in side order) of a battle's conversation; None for a plain chat."""
    setup = conversation.metadata.get("battle")
    if not isinstance(setup, dict):
        return None
    return setup["mode"], list(setup["models"])


class BattleService:
    """Starts battles between the catalog's models and finds their rounds again."""

    def __init__(
        self,
        chat: ChatService,
        models: ModelCatalog,
        *,
        rng: random.Random | None = None,
        background: BackgroundWork | None = None,
    ) -> None:
        self.chat = chat
        self.models = models
        self.rng = rng or random.Random()
        # A battle's sides are chat replies: by default they run where the chat's work runs.
        self.background = background or chat.background

    def pick(self, mode: BattleMode, models: Sequence[str] = (), *, sides: int = 2) -> list[str]:
        """The model of each side: at random (anonymous), as named, or one model repeated."""
        if not 2 <= sides <= MAX_SIDES:
            raise ValidationError(f"a battle has 2 to {MAX_SIDES} sides, not {sides}")
        for spec in models:
            self.models.get(spec)  # refuses a model that is not offered
        if mode == "resample":
            if len(set(models)) > 1:
                raise ValidationError("resample asks one model several times: name one model")
            return [models[0] if models else self.models.default.spec] * sides
        if mode == "named":
            if len(models) != sides or len(set(models)) != sides:
                raise ValidationError(
                    f"name {sides} different models for a {sides}-sided battle",
                    details={"models": list(models)},
                )
            return list(models)
        pool = list(models) or self.models.specs
        if len(set(pool)) < sides:
            raise ValidationError(
                f"an anonymous battle needs {sides} different models; this server offers "
                f"{len(set(pool))} ({', '.join(sorted(set(pool)))}): serve more with -m, or "
                "sample one model twice (resample)",
                details={"available": sorted(set(pool))},
            )
        return self.rng.sample(sorted(set(pool)), sides)

    def start(
        self,
        prompt: str | Sequence[ChatMessage],
        *,
        mode: BattleMode = "named",
        models: Sequence[str] = (),
        sides: int = 2,
        project: str = "default",
        user: str | None = None,
        system_prompt: str | None = None,
        options: ModelOptions | Mapping[str, Any] | None = None,
    ) -> Battle:
        """A new battle's first round: ``prompt`` is the question, or messages ending with one."""
        specs = self.pick(mode, models, sides=sides)
        messages = (
            [ChatMessage(role="user", content=prompt)] if isinstance(prompt, str) else list(prompt)
        )
        system = [m.content for m in messages if m.role == "system"]
        turns = [m for m in messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user":
            raise ValidationError("a battle's prompt ends with the user's question")
        conversation = self.chat.start_conversation(
            project=project,
            user=user,
            model=specs[0],
            system_prompt=system_prompt or "\n\n".join(system) or None,
            tags=[BATTLE_TAG],
            metadata={"battle": {"mode": mode, "models": specs}},
        )
        parent_id: str | None = None
        for turn in turns[:-1]:
            parent_id = self._add_history(conversation, turn, parent_id)
        question = self.chat.add_user_message(
            conversation.id, turns[-1].content, parent_id=parent_id
        )
        return self._round(conversation, question, mode, specs, options)

    def follow_up(
        self,
        answer_id: str,
        content: str,
        *,
        options: ModelOptions | Mapping[str, Any] | None = None,
    ) -> Battle:
        """The next round: a question after the chosen answer, put to the same models again."""
        answer = self.chat.store.get_message(answer_id)
        conversation = self.chat.store.get_conversation(answer.conversation_id)
        setup = battle_setup(conversation)
        if setup is None or answer.role != "assistant":
            raise ValidationError("continue a battle after one of its answers")
        question = self.chat.add_user_message(conversation.id, content, parent_id=answer.id)
        return self._round(conversation, question, setup[0], setup[1], options)

    def round_runs(self, question_id: str) -> tuple[Conversation, list[Run]]:
        """A round's conversation and its runs, in side order."""
        question = self.chat.store.get_message(question_id)
        conversation = self.chat.store.get_conversation(question.conversation_id)
        runs = [
            run
            for run in self.chat.store.conversation_runs(conversation.id)
            if run.metadata.get(ROUND_KEY) == question.id
        ]
        if battle_setup(conversation) is None or len(runs) < 2:
            raise NotFoundError(f"no battle round {question_id}")
        return conversation, sorted(runs, key=lambda run: int(run.metadata[SIDE_KEY]))

    def _round(
        self,
        conversation: Conversation,
        question: Message,
        mode: BattleMode,
        specs: Sequence[str],
        options: ModelOptions | Mapping[str, Any] | None,
    ) -> Battle:
        sides = [
            Side(
                index,
                spec,
                self.chat.reply(
                    question.id,
                    model=spec,
                    options=options,
                    metadata={ROUND_KEY: question.id, SIDE_KEY: index},
                ),
            )
            for index, spec in enumerate(specs)
        ]
        return Battle(
            conversation=conversation,
            question=question,
            mode=mode,
            sides=sides,
            background=self.background,
        )

    def _add_history(
        self, conversation: Conversation, turn: ChatMessage, parent: str | None
    ) -> str:
        if turn.role == "user":
            return self.chat.add_user_message(conversation.id, turn.content, parent_id=parent).id
        # An earlier answer given with the prompt: part of the history, not a run of this battle.
        message = Message(
            conversation_id=conversation.id,
            project=conversation.project,
            parent_id=parent,
            role="assistant",
            content=turn.content,
        )
        self.chat.store.append(MessageAdded(message=message))
        return message.id


def run_battle(
    chat: ChatService,
    prompt: str | Sequence[ChatMessage],
    models: Sequence[str],
    **options: Any,
) -> Battle:
    """Battle ``models`` (two to four specs of ``chat``'s catalog; one spec repeated samples it
    several times) on ``prompt`` and wait for every side; keyword options go to
    :meth:`BattleService.start`."""
    service = BattleService(chat, chat.models)
    mode: BattleMode = "resample" if len(set(models)) == 1 else "named"
    battle = service.start(prompt, mode=mode, models=models, sides=len(models), **options)
    return battle.run()
