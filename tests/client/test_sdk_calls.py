"""SDK calls beyond runs and feedback: retract, conversations, events, run URLs, data_id,
and arguments refused at the call instead of dropped later by the batcher."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.client.conftest import Sdk
from tuneback import AsyncClient, ValidationError
from tuneback.cli import app
from tuneback.domain import ConversationEnded, ConversationStarted, FeedbackRetracted, MessageAdded
from tuneback.services.analytics import dashboard


def test_retract_takes_back_feedback_still_in_the_queue(sdk: Sdk) -> None:
    with sdk.client(flush_interval=60) as client:
        run_id = client.log_run(inputs="q", output="a")
        fb_id = client.record_feedback(run_id, "thumbs", value="up", user="ann")
        client.retract(fb_id)
        assert (client.stats.sent, client.stats.dropped) == (2, 0)
    feedback = sdk.store.get_feedback(fb_id)
    assert feedback.retracted_at is not None
    assert sdk.store.feedback_for_run(run_id) == []


def test_a_conversation_with_messages_and_a_run(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    conv_id = client.start_conversation(user="ann", model="m", title="Hi", tags=["demo"])
    question = client.add_message(conv_id, "user", "What is 2+2?")
    run_id = client.log_run(inputs="What is 2+2?", output="4", conversation_id=conv_id)
    answer = client.add_message(conv_id, "assistant", "4", parent_id=question, run_id=run_id)
    client.end_conversation(conv_id)

    conversation = sdk.store.get_conversation(conv_id)
    assert (conversation.user, conversation.model, conversation.title, conversation.tags) == (
        "ann",
        "m",
        "Hi",
        ["demo"],
    )
    assert conversation.ended_at is not None
    messages = sdk.store.conversation_messages(conv_id)
    assert [(m.id, m.role, m.content, m.parent_id, m.run_id) for m in messages] == [
        (question, "user", "What is 2+2?", None, None),
        (answer, "assistant", "4", question, run_id),
    ]
    client.close()


def test_a_resent_conversation_id_is_a_no_op(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    conv_id = client.start_conversation(id="conv-1", user="ann")
    assert client.start_conversation(id="conv-1", user="ann") == conv_id
    assert [c.id for c in sdk.store.list_conversations("demo")] == ["conv-1"]
    client.close()


def test_events_after_an_offset(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    start = client.events().last_seq
    conv_id = client.start_conversation(user="ann")
    client.add_message(conv_id, "user", "hello")
    client.end_conversation(conv_id)
    page = client.events(after=start)
    assert [type(e.payload) for e in page.events] == [
        ConversationStarted,
        MessageAdded,
        ConversationEnded,
    ]
    assert [e.seq for e in page.events] == sorted(e.seq for e in page.events)
    assert page.last_seq == page.events[-1].seq
    assert client.events(after=page.last_seq).events == []
    only = client.events(after=start, types=["message.added"])
    assert [e.type for e in only.events] == ["message.added"]
    client.close()


def test_run_url_is_the_runs_page(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    url = client.run_url(run_id)
    assert url == f"http://tuneback.test/runs/{run_id}"
    with pytest.raises(ValidationError):
        client.run_url("../keys")
    client.close()


def test_data_id_is_an_alias_of_run_id(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    client.feedback(data_id=run_id, type="rating", value="good", user="ann")
    client.feedback(
        [{"data_id": run_id, "type": "correction", "value": "A better a.", "user": "bob"}]
    )
    got = {(f.key, f.user, f.score, f.correction) for f in sdk.store.feedback_for_run(run_id)}
    assert got == {("thumbs", "ann", 1.0, None), ("correction", "bob", None, "A better a.")}
    client.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.record_feedback("r1", "faces/🙂", value=1), "feedback key"),
        (lambda c: c.record_feedback("r1", "stars", value=6), "between 1 and 5"),
        (lambda c: c.record_feedback("r1", "faces", value=0), "faces takes"),
        (lambda c: c.record_feedback("r1", "thumbs", value="meh"), "thumbs takes"),
        (lambda c: c.record_feedback("r1", "helpful", score=1.5), "0..1"),
        (lambda c: c.feedback([{"run_id": "r1", "value": "good"}]), "needs a type"),
        (lambda c: c.feedback([{"type": "rating", "value": "good"}]), "needs a run_id"),
        (lambda c: c.feedback([{"data": "r1", "type": "rating"}]), "unknown fields: data"),
        (lambda c: c.feedback(type="rating", value="good"), "the run it is about"),
        (lambda c: c.feedback("r1", data_id="r2", type="rating"), "not both"),
        (lambda c: c.add_message("c1", "robot", "hi"), "role"),
    ],
)
def test_invalid_arguments_raise_at_the_call(sdk: Sdk, call: object, message: str) -> None:
    with sdk.client(flush_interval=60) as client:
        with pytest.raises(ValidationError, match=message):
            call(client)  # type: ignore[operator]
        assert client.stats.queued == 0


async def test_the_async_client_has_the_same_calls(sdk: Sdk) -> None:
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", sdk.key, transport=transport) as client:
        start = (await client.events()).last_seq
        conv_id = await client.start_conversation(user="ann")
        await client.add_message(conv_id, "user", "hi")
        run_id = await client.log_run(inputs="hi", output="hello", conversation_id=conv_id)
        [fb_id] = await client.feedback(data_id=run_id, type="rating", value="bad")
        await client.retract(fb_id)
        await client.end_conversation(conv_id)
        page = await client.events(after=start)
        assert client.run_url(run_id).endswith(f"/runs/{run_id}")
        with pytest.raises(ValidationError):
            await client.record_feedback(run_id, "stars", value=0)
    assert [e.type for e in page.events] == [
        "conversation.started",
        "message.added",
        "run.completed",
        "feedback.recorded",
        "feedback.retracted",
        "conversation.ended",
    ]
    assert isinstance(page.events[4].payload, FeedbackRetracted)
    assert sdk.store.get_conversation(conv_id).ended_at is not None


def test_follow_reads_on_as_events_arrive(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    start = client.events().last_seq
    first = client.log_run(inputs="q", output="a")
    follow = client.follow(after=start, poll_interval=0.01, limit=1)
    assert next(follow).payload.run.id == first  # type: ignore[attr-defined]
    second = client.log_run(inputs="q", output="b")
    assert next(follow).payload.run.id == second  # type: ignore[attr-defined]
    follow.close()
    client.close()


async def test_the_async_client_follows_too(sdk: Sdk) -> None:
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", sdk.key, transport=transport) as client:
        start = (await client.events()).last_seq
        run_id = await client.log_run(inputs="q", output="a")  # queued: follow sees it land
        follow = client.follow(after=start, poll_interval=0.01)
        event = await anext(follow)
        await follow.aclose()
    assert (event.type, event.payload.run.id) == ("run.completed", run_id)  # type: ignore[attr-defined]


def test_template_inputs_are_kept_beside_the_messages_and_the_export_trains_on_them(
    sdk: Sdk, database_url: str, tmp_path: Path
) -> None:
    client = sdk.client(background=False)
    rendered = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What colour is the sky?"},
    ]
    run_id = client.log_run(
        inputs=rendered,
        template_inputs={"question": "What colour is the sky?"},
        metadata={"app": "quiz"},
        output="Grey.",
    )
    client.feedback(run_id, type="correction", value="Blue.")
    run = sdk.store.get_run(run_id)
    assert [m.model_dump() for m in run.inputs] == rendered  # type: ignore[union-attr]
    assert run.metadata == {
        "app": "quiz",
        "template_inputs": {"question": "What colour is the sky?"},
    }
    with pytest.raises(ValidationError, match="inputs are the rendered messages"):
        client.log_run(inputs={"question": "q"}, template_inputs={"question": "q"}, output="a")
    out = tmp_path / "sft"
    result = CliRunner().invoke(
        app, ["export", "sft", "-o", str(out), "--project", "demo", "-d", database_url]
    )
    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert row["messages"] == [*rendered, {"role": "assistant", "content": "Blue."}]
    client.close()


async def test_project_stats_are_the_dashboards_numbers(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    a = client.log_run(inputs="q", output="a", model="m1", latency_ms=100)
    client.log_run(inputs="q", output="b", model="m2", latency_ms=300)
    client.feedback(a, type="rating", value="good", user="ann")
    stats = client.project_stats(period="24h")
    assert untimed(stats) == untimed(dashboard(sdk.store, project="demo", period="24h"))
    summary = stats["summary"]
    assert (summary["runs"], summary["feedback"], summary["positive_rate"]) == (2, 1, 1.0)
    narrowed = client.project_stats(period="24h", model="m1")
    assert (narrowed["model"], narrowed["summary"]["runs"]) == ("m1", 1)
    transport = httpx.ASGITransport(app=sdk.app)
    async with AsyncClient("http://tuneback.test", sdk.key, transport=transport) as aclient:
        assert untimed(await aclient.project_stats(period="24h")) == untimed(stats)
    with pytest.raises(ValidationError):
        client.project_stats(period="fortnight")
    client.close()


def untimed(stats: dict[str, object]) -> dict[str, object]:
    """The numbers without the moment they were asked for."""
    return {k: v for k, v in stats.items() if k not in ("since", "until")}
