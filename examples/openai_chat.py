"""A terminal chat with any OpenAI-compatible model; each answer is logged to tuneback
and rated 👍/👎 by whoever is typing.

    export TUNEBACK_URL=http://127.0.0.1:8000 TUNEBACK_API_KEY=tb_…
    export OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_API_KEY=ollama  # or OpenAI itself
    python examples/openai_chat.py --model llama3.2

Type a question, read the streamed answer, then answer y, n or Enter (no rating).
An empty question ends the chat. Open the printed link to see the run in tuneback.
"""

from __future__ import annotations

import argparse
import sys

import openai
from openai.types.chat import ChatCompletionMessageParam

import tuneback
from tuneback.integrations.openai import run_id_of, wrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--user", default="me")
    args = parser.parse_args()

    feedback = tuneback.Client()
    client = wrap(openai.OpenAI(), feedback, user=args.user)  # every call is now a run
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Answer briefly."}]
    while question := input("you> ").strip():
        messages.append({"role": "user", "content": question})
        stream = client.chat.completions.create(
            model=args.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts = []
        for chunk in stream:
            text = chunk.choices[0].delta.content if chunk.choices else None
            if text:
                parts.append(text)
                print(text, end="", flush=True)
        print()
        messages.append({"role": "assistant", "content": "".join(parts)})
        run_id = run_id_of(stream)
        rating = input("good? [y/n/Enter] ").strip().lower()
        if run_id and rating in ("y", "n"):
            feedback.feedback(run_id, type="rating", value="good" if rating == "y" else "bad")
        if run_id:
            print(f"  {feedback.run_url(run_id)}", file=sys.stderr)
    feedback.close()


if __name__ == "__main__":
    main()
