"""A LangChain chain traced into tuneback, with feedback on each answer — the
``collect_runs`` + feedback pattern, on tuneback.

    export TUNEBACK_URL=http://127.0.0.1:8000 TUNEBACK_API_KEY=tb_…
    python examples/langchain_chain.py

It uses ``ChatOpenAI`` when ``langchain-openai`` is installed and ``OPENAI_API_KEY``
is set (``--model`` picks the model), and otherwise langchain-core's fake chat
model, so it runs anywhere. Type a question, then y, n or Enter (no rating); an
empty question ends it. The chain shows in tuneback as a run tree: the sequence,
its prompt, the model call (with the rendered messages) and the parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from itertools import cycle

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

import tuneback
from tuneback.integrations.langchain import trace


def chat_model(model: str) -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            return ChatOpenAI(model=model, temperature=0.2)  # type: ignore[no-any-return]
    replies = ["The sky looks blue because air scatters blue light the most.", "Ask me more."]
    return GenericFakeChatModel(messages=cycle(AIMessage(content=r) for r in replies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--user", default="me")
    args = parser.parse_args()

    feedback = tuneback.Client()
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer in one sentence."), ("human", "{question}")]
    )
    chain = prompt | chat_model(args.model) | StrOutputParser()
    while question := input("you> ").strip():
        with trace(feedback, user=args.user) as t:  # every run inside is logged
            for text in chain.stream({"question": question}):
                print(text, end="", flush=True)
        print()
        run_id = t.run_ids[0]  # the chain's run: feedback on the whole answer
        rating = input("good? [y/n/Enter] ").strip().lower()
        if rating in ("y", "n"):
            feedback.feedback(run_id, type="rating", value="good" if rating == "y" else "bad")
        print(f"  {feedback.run_url(run_id)}", file=sys.stderr)
    feedback.close()


if __name__ == "__main__":
    main()
