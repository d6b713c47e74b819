"""The LangChain integration: a real chain with langchain-core's fake chat model,
logged through the SDK into a real tuneback app."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from tests.client.conftest import Sdk
from tuneback.domain import ChatMessage, Run
from tuneback.integrations.langchain import TunebackCallbackHandler, trace

ANSWER = "Light scatters off air"


def make_chain(*answers: str) -> Runnable[dict[str, str], str]:
    model = GenericFakeChatModel(
        messages=iter(
            AIMessage(
                content=a,
                usage_metadata={"input_tokens": 9, "output_tokens": 4, "total_tokens": 13},
            )
            for a in answers
        )
    )
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    return prompt | model | StrOutputParser()


def tree(runs: list[Run], root: str) -> list[tuple[str, str | None, str]]:
    """(name, parent name, type) for ``root`` and its children, sorted by name."""
    by_id = {r.id: r for r in runs}
    under = [r for r in runs if r.id == root or r.parent_run_id == root]
    return sorted(
        (
            (
                r.name or "",
                by_id[r.parent_run_id].name if r.parent_run_id in by_id else None,
                r.run_type,
            )
            for r in under
        ),
    )


def test_a_chain_is_a_run_tree_keyed_by_langchains_run_id(sdk: Sdk) -> None:
    tb = sdk.client(flush_interval=60)
    handler = TunebackCallbackHandler(tb, user="ann", tags=["app"])
    root = uuid.uuid4()
    answer = make_chain(ANSWER).invoke(
        {"question": "Why is the sky blue?"}, config={"callbacks": [handler], "run_id": root}
    )
    assert answer == ANSWER
    assert handler.run_ids == [str(root)]
    assert tb.flush(timeout=10)
    runs = sdk.store.list_runs("demo")
    assert tree(runs, str(root)) == [
        ("ChatPromptTemplate", "RunnableSequence", "chain"),
        ("GenericFakeChatModel", "RunnableSequence", "llm"),
        ("RunnableSequence", None, "chain"),
        ("StrOutputParser", "RunnableSequence", "chain"),
    ]
    [llm_id] = handler.llm_run_ids
    llm = sdk.store.get_run(llm_id)
    assert llm.inputs == [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Why is the sky blue?"),
    ]
    assert (llm.output, llm.model, llm.status, llm.user) == (
        ANSWER,
        "GenericFakeChatModel",
        "ok",
        "ann",
    )
    assert (llm.prompt_tokens, llm.completion_tokens) == (9, 4)
    assert llm.latency_ms is not None
    assert llm.ttft_ms is None
    assert llm.tags == ["app"]  # without LangChain's own seq:step:N
    assert llm.metadata["integration"] == "langchain"
    assert llm.metadata["ls_provider"] == "genericfakechatmodel"
    top = sdk.store.get_run(str(root))
    assert top.inputs == {"question": "Why is the sky blue?"}
    assert top.output == ANSWER
    # Feedback on the id the app chose before the run.
    tb.feedback(str(root), type="rating", value="bad", user="ann")
    assert tb.flush(timeout=10)
    assert [f.score for f in sdk.store.feedback_for_run(str(root))] == [0.0]
    tb.close()


def test_trace_collects_the_runs_started_inside_it(sdk: Sdk) -> None:
    tb = sdk.client(flush_interval=60)
    chain = make_chain("one", "two", "three")
    with trace(tb) as t:
        chain.invoke({"question": "a"})
        streamed = "".join(chain.stream({"question": "b"}))
    chain.invoke({"question": "c"})  # outside: not logged
    assert streamed == "two"
    assert len(t.run_ids) == 2
    assert len(t.llm_run_ids) == 2
    assert tb.flush(timeout=10)
    runs = sdk.store.list_runs("demo")
    assert len(runs) == 8
    streamed_llm = sdk.store.get_run(t.llm_run_ids[1])
    assert streamed_llm.output == "two"
    assert streamed_llm.ttft_ms is not None
    assert streamed_llm.latency_ms is not None
    assert streamed_llm.ttft_ms <= streamed_llm.latency_ms
    tb.close()


async def test_an_async_chain_in_trace(sdk: Sdk) -> None:
    tb = sdk.client(flush_interval=60)
    chain = make_chain("one", "two")
    with trace(tb) as t:
        assert await chain.ainvoke({"question": "a"}) == "one"
        assert [p async for p in chain.astream({"question": "b"})] == ["two"]
    assert len(t.run_ids) == 2
    assert tb.flush(timeout=10)
    outputs = [sdk.store.get_run(run_id).output for run_id in t.llm_run_ids]
    assert outputs == ["one", "two"]
    assert sdk.store.get_run(t.llm_run_ids[1]).ttft_ms is not None
    tb.close()


def test_a_failing_step_is_an_error_run_and_the_error_reaches_the_app(sdk: Sdk) -> None:
    tb = sdk.client(flush_interval=60)

    def refuse(_: object) -> str:
        raise ValueError("no answer")

    chain = make_chain(ANSWER) | RunnableLambda(refuse)
    with trace(tb) as t, pytest.raises(ValueError, match="no answer"):
        chain.invoke({"question": "q"})
    assert tb.flush(timeout=10)
    [root] = t.run_ids
    top = sdk.store.get_run(root)
    assert top.status == "error"
    assert top.error == "ValueError: no answer"
    assert [r.status for r in sdk.store.list_runs("demo") if r.name == "refuse"] == ["error"]
    tb.close()


def test_a_log_that_fails_never_breaks_the_chain(caplog: pytest.LogCaptureFixture) -> None:
    from tuneback import Client

    unreachable = Client("http://127.0.0.1:9", background=False, max_retries=0, timeout=1)
    with trace(unreachable) as t:
        assert make_chain(ANSWER).invoke({"question": "q"}) == ANSWER
    assert t.run_ids == []
    assert "could not log a LangChain run" in caplog.text
    unreachable.close()
