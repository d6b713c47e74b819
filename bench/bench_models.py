"""Benchmark the ``local`` adapter against calling ``llama_cpp.Llama`` directly.

Prints cold start (construct + load + first token), warm time to first token and
decode speed over a ~64-token reply (median of 3 runs each), for the adapter and
for the bare llama.cpp bindings measured the same way in the same process, and the
ratio adapter / baseline. Both use the same GGUF file, n_ctx, threads and sampling
(greedy), and each run asks a slightly different question so that the prompt has
to be evaluated again (only the shared system prompt is reused from llama.cpp's
cache, equally for both).

Run: ``.venv/bin/python bench/bench_models.py``
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import llama_cpp

from tuneback.domain.conversation import ChatMessage
from tuneback.models import ModelOptions, Usage, resolve_model
from tuneback.models.local import DEFAULT_N_CTX, LlamaCppModel, bundled_model_path

RUNS = 3
MAX_TOKENS = 64
TOPICS = ["a robot who learns to paint", "a lighthouse keeper", "a cat that sails", "a clock"]


def question(run: int) -> str:
    return f"Write a short story about {TOPICS[run % len(TOPICS)]}."


@dataclass
class Timing:
    first_token: float
    """Seconds from the request to the first text chunk."""
    tokens: int
    decode_seconds: float
    """Seconds from the first chunk to the end of the answer."""

    @property
    def tokens_per_second(self) -> float:
        return (self.tokens - 1) / self.decode_seconds if self.decode_seconds > 0 else 0.0


def time_stream(chunks: Iterator[object], count_tokens: Callable[[list[str]], int]) -> Timing:
    started = time.perf_counter()
    first: float | None = None
    texts: list[str] = []
    reported: int | None = None
    for item in chunks:
        if isinstance(item, Usage):
            reported = item.completion_tokens
        elif item:
            if first is None:
                first = time.perf_counter()
            texts.append(str(item))
    ended = time.perf_counter()
    assert first is not None, "no text was generated"
    tokens = reported if reported is not None else count_tokens(texts)
    return Timing(first - started, tokens, ended - first)


def adapter_stream(model: LlamaCppModel, run: int) -> Iterator[object]:
    messages = [ChatMessage(role="user", content=question(run))]
    return model.stream(messages, ModelOptions(max_tokens=MAX_TOKENS, temperature=0))


def baseline_stream(llm: llama_cpp.Llama, run: int) -> Iterator[object]:
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": question(run)}],
        stream=True,
        max_tokens=MAX_TOKENS,
        temperature=0,
    ):
        content = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
        if content:
            yield content


def main() -> None:
    path = bundled_model_path()
    # llama.cpp initialises its backends once per process, on the first model;
    # do that outside the timings so neither side of the cold start pays for it.
    llama_cpp.Llama(model_path=str(path), n_ctx=DEFAULT_N_CTX, verbose=False).close()

    started = time.perf_counter()
    model = resolve_model("local")
    assert isinstance(model, LlamaCppModel)
    model.start_loading()
    first_answer = time_stream(adapter_stream(model, 0), len)
    adapter_cold = time.perf_counter() - started - first_answer.decode_seconds

    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=DEFAULT_N_CTX, verbose=False)

    def count_baseline(texts: list[str]) -> int:
        return len(llm.tokenize("".join(texts).encode(), add_bos=False, special=False))

    first_answer = time_stream(baseline_stream(llm, 0), len)
    baseline_cold = time.perf_counter() - started - first_answer.decode_seconds

    adapter_runs: list[Timing] = []
    baseline_runs: list[Timing] = []
    for run in range(1, RUNS + 1):
        # Interleaved so that any drift in machine load hits both alike.
        adapter_runs.append(time_stream(adapter_stream(model, run), len))
        baseline_runs.append(time_stream(baseline_stream(llm, run), count_baseline))

    def median(runs: list[Timing], field: Callable[[Timing], float]) -> float:
        return statistics.median(field(timing) for timing in runs)

    rows = [
        ("cold start to first token (s)", adapter_cold, baseline_cold),
        (
            "warm time to first token (s)",
            median(adapter_runs, lambda t: t.first_token),
            median(baseline_runs, lambda t: t.first_token),
        ),
        (
            "decode tokens/s",
            median(adapter_runs, lambda t: t.tokens_per_second),
            median(baseline_runs, lambda t: t.tokens_per_second),
        ),
    ]
    print(f"model: {path.name}  n_ctx={DEFAULT_N_CTX}  threads={llm.n_threads}  runs={RUNS}")
    print(
        "reply tokens per run: adapter "
        f"{[t.tokens for t in adapter_runs]}, baseline {[t.tokens for t in baseline_runs]}"
    )
    print(f"{'metric':34} {'tuneback local':>15} {'llama_cpp direct':>17} {'ratio':>7}")
    for label, ours, theirs in rows:
        ratio = ours / theirs if theirs else float("nan")
        print(f"{label:34} {ours:15.3f} {theirs:17.3f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
