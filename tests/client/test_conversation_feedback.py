"""Feedback on a whole conversation and on one message, through REST and the SDK,
recorded by the one feedback service: same scales, same superseding, same scoping."""

from __future__ import annotations

import httpx
import pytest

from tests.client.conftest import Sdk
from tuneback import AsyncClient, Client, NotFoundError, ValidationError
from tuneback.services.keys import KeyService


def chat(client: Client) -> tuple[str, str, str, str]:
    """A conversation with a question and an answer logged as a run."""
    conv = client.start_conversation(user="ann", title="Sky")
    question = client.add_message(conv, "user", "Why is the sky blue?")
    run_id = client.log_run(inputs="Why is the sky blue?", output="Scattering.", background=False)
    answer = client.add_message(conv, "assistant", "Scattering.", parent_id=question, run_id=run_id)
    return conv, question, answer, run_id


def test_feedback_on_a_conversation_and_on_its_messages(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    conv, question, answer, run_id = chat(client)
    first = client.conversation_feedback(conv, "stars", value=4, user="ann")
    second = client.conversation_feedback(conv, "stars", value=5, user="ann", comment="great")
    on_question = client.conversation_feedback(
        conv, "thumbs", message_id=question, value="down", user="ann"
    )
    on_answer = client.conversation_feedback(
        conv, "thumbs", message_id=answer, value="up", user="ann"
    )
    earlier, rating = sdk.store.get_feedback(first), sdk.store.get_feedback(second)
    assert (earlier.current, earlier.superseded_by) == (False, second)
    assert (rating.run_id, rating.conversation_id, rating.key, rating.score, rating.comment) == (
        None,
        conv,
        "stars",
        1.0,
        "great",
    )
    assert (rating.user, rating.source, rating.project) == ("ann", "api", "demo")
    asked = sdk.store.get_feedback(on_question)
    assert (asked.run_id, asked.conversation_id, asked.score, asked.metadata) == (
        None,
        conv,
        0.0,
        {"message_id": question},
    )
    # An answer with a run is rated through its run, like any rating of that run.
    [answered] = sdk.store.feedback_for_run(run_id)
    assert (answered.id, answered.key, answered.score, answered.metadata) == (
        on_answer,
        "thumbs",
        1.0,
        {},
    )
    client.close()


def test_what_the_rules_refuse(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    conv, question, _, _ = chat(client)
    other_conv = client.start_conversation(user="bob")
    with pytest.raises(ValidationError):  # refused at the call: stars go 1..5
        client.conversation_feedback(conv, "stars", value=9)
    http = httpx.Client(
        base_url="http://tuneback.test",
        transport=sdk.transport,
        headers={"Authorization": f"Bearer {sdk.key}"},
    )
    refused = http.post(f"/api/v1/conversations/{conv}/feedback", json={"key": "stars", "value": 9})
    assert (refused.status_code, refused.json()["error"]["type"]) == (422, "validation_error")
    no_key = http.post(f"/api/v1/conversations/{conv}/feedback", json={"value": "up"})
    assert no_key.status_code == 422
    with pytest.raises(NotFoundError):
        client.conversation_feedback("01ARZ3NDEKTSV4RRFFQ69G5FAV", "thumbs", value="up")
    with pytest.raises(NotFoundError, match=f"no message {question} in conversation"):
        client.conversation_feedback(other_conv, "thumbs", message_id=question, value="up")
    # Another project's conversation does not exist for this key.
    elsewhere = Client(
        "http://tuneback.test",
        KeyService(sdk.store).create("elsewhere").key,
        transport=sdk.transport,
        background=False,
    )
    with pytest.raises(NotFoundError):
        elsewhere.conversation_feedback(conv, "thumbs", value="up")
    elsewhere.close()
    http.close()
    client.close()


async def test_the_async_client_rates_conversations_too(sdk: Sdk) -> None:
    conv, question, _, _ = chat(sdk.client(background=False))
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", sdk.key, transport=transport) as client:
        fb = await client.conversation_feedback(conv, "comment", comment="Too slow", user="ann")
        on_question = await client.conversation_feedback(
            conv, "thumbs", message_id=question, value="up"
        )
    stored = sdk.store.get_feedback(fb)
    assert (stored.kind, stored.comment, stored.conversation_id) == ("comment", "Too slow", conv)
    assert sdk.store.get_feedback(on_question).metadata == {"message_id": question}
