"""The same scripted model call, asked through the chat, the proxy and an annotation task,
is recorded as the same run (on both databases): one recorder, one set of rules."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.conftest import BASE, make_app
from tuneback.domain import ChatMessage, Run
from tuneback.errors import ModelError
from tuneback.models import ScriptedModel, Usage
from tuneback.services.annotation import AnnotationService, answer_id
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.keys import KeyService
from tuneback.services.review import ReviewService
from tuneback.storage import Store

QUESTION = "Name a colour."

Script = Callable[[ScriptedModel], None]


def _answered(model: ScriptedModel) -> None:
    model.enqueue(chunks=["Deep", " blue"], usage=Usage(9, 2))


def _estimated(model: ScriptedModel) -> None:
    model.enqueue("Red.")


def _failed_mid_stream(model: ScriptedModel) -> None:
    model.enqueue(chunks=["half", " an"], error=ModelError("backend fell over"), error_after=1)


def _said_nothing(model: ScriptedModel) -> None:
    model.enqueue(error=ModelError("401 unauthorized"))


SCRIPTS: dict[str, Script] = {
    "answered": _answered,
    "estimated usage": _estimated,
    "failed mid-stream": _failed_mid_stream,
    "said nothing": _said_nothing,
}


def _shared(run: Run) -> dict[str, Any]:
    """What every caller records alike; the rest (ids, project, conversation) is the caller's."""
    assert run.latency_ms is not None
    assert run.latency_ms == round(run.latency_ms, 3)
    assert run.ttft_ms is None or run.ttft_ms == round(run.ttft_ms, 3)
    return {
        "model": run.model,
        "inputs": run.inputs,
        "output": run.output,
        "status": run.status,
        "error": run.error,
        "tokens": (run.prompt_tokens, run.completion_tokens),
        "usage_estimated": run.metadata.get("usage_estimated"),
        "has_ttft": run.ttft_ms is not None,
    }


def _through_chat(store: Store, script: Script) -> Run:
    model = ScriptedModel()
    script(model)
    chat = ChatService(store, ModelCatalog([model]))
    conversation = chat.start_conversation(project="p")
    reply = chat.reply(chat.add_user_message(conversation.id, QUESTION).id)
    with contextlib.suppress(ModelError):  # recorded as a failed run all the same
        list(reply)
    return store.get_run(reply.run_id)


def _through_annotation(store: Store, script: Script) -> Run:
    model = ScriptedModel()
    script(model)
    catalog = ModelCatalog([model])
    tasks = AnnotationService(store, catalog, ReviewService(store))
    task = tasks.create(project="p", name="same", prompts=[[_user()]])
    tasks.wait(task.id, timeout=30)
    return store.get_run(answer_id(task.id, 0, 0))


def _user() -> ChatMessage:
    return ChatMessage(role="user", content=QUESTION)


async def _through_proxy(store: Store, script: Script, *, stream: bool) -> Run:
    app = make_app(store)
    model = app.state.services.models.default
    assert isinstance(model, ScriptedModel)
    script(model)
    key = KeyService(store).create("p").key
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted",
                "messages": [{"role": "user", "content": QUESTION}],
                "stream": stream,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
    return store.get_run(response.headers["x-tuneback-run-id"])


@pytest.mark.parametrize("scenario", list(SCRIPTS))
async def test_chat_proxy_and_annotation_record_the_same_run(store: Store, scenario: str) -> None:
    script = SCRIPTS[scenario]
    chat = _through_chat(store, script)
    proxied = await _through_proxy(store, script, stream=False)
    streamed = await _through_proxy(store, script, stream=True)
    annotated = _through_annotation(store, script)
    assert _shared(chat) == _shared(proxied) == _shared(streamed) == _shared(annotated)
    assert (proxied.metadata["stream"], streamed.metadata["stream"]) == (False, True)
    # What differs is each caller's own: the chat's conversation, the proxy's request.
    assert chat.conversation_id is not None
    assert proxied.params == {"requested_model": "scripted"}
    assert proxied.metadata["source"] == "proxy"
    assert annotated.params == chat.params == {}


def test_the_shared_parts_are_what_the_model_did(store: Store) -> None:
    answered = _shared(_through_chat(store, _answered))
    assert answered == {
        "model": "scripted",
        "inputs": [_user()],
        "output": "Deep blue",
        "status": "ok",
        "error": None,
        "tokens": (9, 2),
        "usage_estimated": None,
        "has_ttft": True,
    }
    silent = _shared(_through_chat(store, _said_nothing))
    assert silent == {
        "model": "scripted",
        "inputs": [_user()],
        "output": None,
        "status": "error",
        "error": "401 unauthorized",
        "tokens": (None, None),
        "usage_estimated": None,
        "has_ttft": False,
    }
