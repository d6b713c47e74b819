"""A Streamlit chat whose answers are rated with 👍/👎 (and a comment) into tuneback —
Streamlit's canonical feedback app, on tuneback.

    export TUNEBACK_URL=http://127.0.0.1:8000 TUNEBACK_API_KEY=tb_…
    streamlit run examples/streamlit_chat.py

With ``OPENAI_BASE_URL`` (or ``OPENAI_API_KEY``) set it answers with that
OpenAI-compatible model (``MODEL``, default gpt-4o-mini); without, it echoes,
so it runs anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import streamlit as st

import tuneback
from tuneback.integrations import streamlit as tb_st

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam


@st.cache_resource
def tuneback_client() -> tuneback.Client:
    return tuneback.Client()


def reply(messages: list[dict[str, str]]) -> Iterator[str]:
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        import openai

        stream = openai.OpenAI().chat.completions.create(
            model=os.environ.get("MODEL", "gpt-4o-mini"),
            messages=cast("list[ChatCompletionMessageParam]", messages),
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
    else:
        yield from f"You said: {messages[-1]['content']}".split(" ")


st.title("Chat")
history: list[dict[str, str]] = st.session_state.setdefault("history", [])

for message in history:
    with st.chat_message(message["role"]):
        st.write(message["content"])
        if "run_id" in message:
            tb_st.feedback(message["run_id"], comment=True, client=tuneback_client())

if question := st.chat_input("Ask something"):
    history.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.write(question)
    messages = [{"role": m["role"], "content": m["content"]} for m in history]
    with st.chat_message("assistant"):
        text, run_id = tb_st.write_stream(
            reply(messages),
            inputs=messages,
            model=os.environ.get("MODEL", "echo"),
            client=tuneback_client(),
        )
        tb_st.feedback(run_id, comment=True, client=tuneback_client())
    history.append({"role": "assistant", "content": text, "run_id": run_id})
