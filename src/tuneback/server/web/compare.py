"""The compare page (the arena): one prompt, two to four answers side by side, a vote.

``/compare`` is the page (``?format=json`` its twin; ``?round=`` reopens a
round, ``?prompt=`` and ``?model=`` prefill it from a chat answer). The page's
script starts a battle with ``POST /ui/compare`` and reads the answers as
server-sent events over the response: ``start`` (the sides, their run ids;
model names only when the battle is not anonymous), ``delta`` (``side`` and
text), ``side`` (one side finished: its run, with the answer as safe HTML) and
``done``. The stop button cancels each side's run with the chat's own
``/ui/runs/{id}/cancel``. A vote (``POST /ui/compare/{round}/vote``) records a
comparison and reveals the models; voting again supersedes the earlier vote.
``POST /ui/compare/continue`` asks a follow-up after the chosen answer, to the
same models.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import iterate_in_threadpool

from tuneback.domain import BattleMode, Comparison, Conversation, Outcome, Run
from tuneback.errors import NotFoundError
from tuneback.server.access import rule, who
from tuneback.server.api.schemas import Body
from tuneback.server.deps import Services, ServicesDep
from tuneback.server.web.chat import run_view
from tuneback.server.web.markdown import render_markdown
from tuneback.server.web.page import Page, page_view, wants_json
from tuneback.server.web.streaming import (
    close_quietly as _close_quietly,
)
from tuneback.server.web.streaming import event_stream, sampling_options, sse
from tuneback.services.battle_votes import Vote
from tuneback.services.battles import LABELS, MAX_SIDES, Battle, battle_setup

router = APIRouter(include_in_schema=False)


class BattleBody(Body):
    content: str = Field(min_length=1, max_length=100_000)
    mode: BattleMode = "anonymous"
    models: list[str] = Field(default_factory=list, max_length=MAX_SIDES)
    sides: int = Field(default=2, ge=2, le=MAX_SIDES)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)


class FollowUpBody(Body):
    answer_id: str = Field(min_length=1, max_length=64)
    content: str = Field(min_length=1, max_length=100_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)


class VoteBody(Body):
    outcome: Outcome | None = None
    ranking: list[Literal["A", "B", "C", "D"]] | None = Field(default=None, max_length=MAX_SIDES)
    comment: str | None = Field(default=None, max_length=10_000)
    ideal: str | None = Field(default=None, max_length=100_000)


def _user(request: Request) -> str:
    return who(request).chatter


def _own_round(services: Services, round_id: str, user: str) -> tuple[Conversation, list[Run]]:
    conversation, runs = services.battles.round_runs(round_id)
    if conversation.user != user:
        raise NotFoundError(f"no battle round {round_id}")
    return conversation, runs


def side_view(label: str, run: Run, *, reveal: bool, content: str | None = None) -> dict[str, Any]:
    view = run_view(run)
    if not reveal:
        view["model"] = None
    output = run.output if content is None else content
    return {
        "label": label,
        "run": view,
        "message_id": run.message_id,
        "html": render_markdown(output) if output else "",
    }


def comparison_view(comparison: Comparison | None) -> dict[str, Any] | None:
    if comparison is None:
        return None
    labels = {c.run_id: LABELS[i] for i, c in enumerate(comparison.candidates)}
    return {
        "id": comparison.id,
        "outcome": comparison.outcome,
        "ranking": [labels[r] for r in comparison.ranking] if comparison.ranking else None,
        "comment": comparison.comment,
        "supersedes": comparison.supersedes,
        "created_at": comparison.created_at.isoformat(),
    }


def round_view(services: Services, round_id: str, user: str) -> dict[str, Any]:
    """One round as the page shows it: the question, the answers, the vote (and then the models)."""
    conversation, runs = _own_round(services, round_id, user)
    setup = battle_setup(conversation)
    assert setup is not None
    vote = services.votes.current_vote(runs, user)
    reveal = vote is not None or setup[0] != "anonymous"
    question = services.store.get_message(round_id)
    sent = runs[0].inputs if isinstance(runs[0].inputs, list) else []
    return {
        "round_id": round_id,
        "conversation_id": conversation.id,
        "mode": setup[0],
        "question": question.content,
        "history": [m.model_dump(mode="json") for m in sent[:-1] if m.role != "system"],
        "sides": [side_view(LABELS[i], run, reveal=reveal) for i, run in enumerate(runs)],
        "vote": comparison_view(vote),
        "revealed": reveal,
    }


def page_data(request: Request, services: Services, round_id: str | None) -> dict[str, Any]:
    user = _user(request)
    return {
        "user": user,
        "project": services.settings.project,
        "models": [{"spec": m.spec, "name": m.name, "status": m.status} for m in services.models],
        "modes": ["anonymous", "named", "resample"],
        "max_sides": MAX_SIDES,
        "votes_left_today": services.votes.remaining(services.settings.project, user),
        "daily_cap": services.settings.compare_daily_votes or None,
        "round": round_view(services, round_id, user) if round_id else None,
    }


@router.get("/compare", dependencies=[rule("chat")])
@page_view
def compare_page(
    request: Request,
    services: ServicesDep,
    round: str | None = None,
    prompt: str | None = None,
    model: str | None = None,
) -> Page:
    try:
        data = page_data(request, services, round)
    except NotFoundError:
        if wants_json(request):
            raise
        return Page("not_found.html", "compare", {"what": "battle round"}, status_code=404)
    prefill = {"prompt": prompt or "", "model": model if model in services.models.specs else None}
    return Page("compare.html", "compare", data, name="data", extra=lambda: {"prefill": prefill})


@router.get("/ui/compare/{round_id}", dependencies=[rule("chat")])
def compare_round(request: Request, services: ServicesDep, round_id: str) -> dict[str, Any]:
    return round_view(services, round_id, _user(request))


@router.post("/ui/compare", dependencies=[rule("chat")])
def start_battle(request: Request, services: ServicesDep, body: BattleBody) -> StreamingResponse:
    """Start a battle and stream every side's answer."""
    battle = services.battles.start(
        body.content,
        mode=body.mode,
        models=body.models,
        sides=body.sides,
        project=services.settings.project,
        user=_user(request),
        system_prompt=body.system_prompt,
        options=sampling_options(body),
    )
    return _stream(battle)


@router.post("/ui/compare/continue", dependencies=[rule("chat")])
def follow_up(request: Request, services: ServicesDep, body: FollowUpBody) -> StreamingResponse:
    """Ask a follow-up after the chosen answer; the same models answer it side by side."""
    answer = services.store.get_message(body.answer_id)
    conversation = services.store.get_conversation(answer.conversation_id)
    if conversation.user != _user(request) or battle_setup(conversation) is None:
        raise NotFoundError(f"no battle answer {body.answer_id}")
    return _stream(
        services.battles.follow_up(body.answer_id, body.content, options=sampling_options(body))
    )


@router.post("/ui/compare/{round_id}/vote", dependencies=[rule("chat")])
def vote(request: Request, services: ServicesDep, round_id: str, body: VoteBody) -> dict[str, Any]:
    """Record the vote (a re-vote supersedes the earlier one) and reveal the models."""
    user = _user(request)
    _own_round(services, round_id, user)
    result = services.votes.vote(
        round_id,
        Vote(
            outcome=body.outcome,
            ranking=list(body.ranking) if body.ranking is not None else None,
            comment=body.comment,
            ideal=body.ideal,
        ),
        user=user,
    )
    view = round_view(services, round_id, user)
    view["correction_id"] = result.correction.id if result.correction else None
    view["votes_left_today"] = services.votes.remaining(services.settings.project, user)
    return view


def _stream(battle: Battle) -> StreamingResponse:
    reveal = battle.mode != "anonymous"

    async def events() -> AsyncIterator[str]:
        chunks: Iterator[tuple[int, str]] = battle.stream()
        try:
            yield sse(
                "start",
                {
                    "conversation_id": battle.conversation.id,
                    "round_id": battle.round_id,
                    "mode": battle.mode,
                    "sides": [
                        {
                            "label": side.label,
                            "run_id": side.run_id,
                            "model": side.model if reveal else None,
                        }
                        for side in battle.sides
                    ],
                },
            )
            finished: set[int] = set()
            async for index, text in iterate_in_threadpool(chunks):
                yield sse("delta", {"side": index, "text": text})
                for side in battle.sides:
                    if side.run is not None and side.index not in finished:
                        finished.add(side.index)
                        yield sse("side", _side_done(side, reveal))
            for side in battle.sides:
                if side.index not in finished:
                    yield sse("side", _side_done(side, reveal))
            yield sse("done", {"round_id": battle.round_id})
        finally:
            # A closed tab: stop every side and keep what each said, in a thread
            # of its own (this task may already be cancelled).
            battle.cancel()
            battle.background.start(
                _close_quietly, chunks, name="tuneback-battle-close", finishing=True
            )

    return event_stream(events())


def _side_done(side: Any, reveal: bool) -> dict[str, Any]:
    run = side.run
    assert run is not None
    message = side.reply.message
    return {
        "side": side.index,
        **side_view(side.label, run, reveal=reveal),
        "message_id": message.id if message else None,
        "error": side.error,
    }
