"""What the logging proxy adds: the same streamed completions, straight to the upstream and
through tuneback's ``/v1/chat/completions``, in the same run.

The upstream is the scripted OpenAI-compatible server of the tests, streaming
``--chunks`` chunks ``--chunk-ms`` apart (a model's pace). tuneback runs under
uvicorn in a child process with a SQLite database; requests are sequential, so
the numbers are latencies, not throughput. The two paths take turns, request by
request, so both see the same machine. Prints each path's time to first token
(median and 90th percentile) and total time, and what the proxy added.

    python bench/bench_proxy.py [--requests 200] [--chunks 20] [--chunk-ms 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_api import child_server
from tests.models.openai_server import FakeOpenAIServer

from tuneback.services.keys import KeyService
from tuneback.storage import Store

BODY = {
    "model": "fake-model",
    "messages": [{"role": "user", "content": "Tell me a story"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def timed(client: httpx.Client, url: str, key: str) -> tuple[float, float]:
    """(time to first content chunk, total) in milliseconds for one streamed completion."""
    start = time.perf_counter()
    first = None
    with client.stream(
        "POST", f"{url}/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - start) * 1000, (end - start) * 1000


def measure(
    paths: dict[str, tuple[str, str]], requests: int
) -> dict[str, list[tuple[float, float]]]:
    """Each path's timings, the paths taking turns request by request (same machine load)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    with httpx.Client(timeout=30) as client:
        for attempt in range(10 + requests):
            for name, (url, key) in paths.items():
                timing = timed(client, url, key)
                if attempt >= 10:  # the first ten warm up
                    samples[name].append(timing)
    return samples


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-ms", type=float, default=5.0)
    args = parser.parse_args()
    upstream = FakeOpenAIServer()
    upstream.start()
    upstream.behaviour.chunks = [f"word{n} " for n in range(args.chunks)]
    upstream.behaviour.chunk_delay = args.chunk_ms / 1000
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = f"sqlite:///{tmp}/bench.db"
            with Store(database_url) as store:
                key = KeyService(store).create("bench").key
            with child_server("tuneback", database_url, upstream.base_url) as proxy:
                samples = measure(
                    {"direct": (upstream.base_url, "none"), "proxy": (f"{proxy}/v1", key)},
                    args.requests,
                )
    finally:
        upstream.stop()
    print(
        f"streamed completions, {args.chunks} chunks {args.chunk_ms:g} ms apart, "
        f"{args.requests} each, the two paths taking turns (ms):"
    )
    ttft = {name: [s[0] for s in timings] for name, timings in samples.items()}
    total = {name: [s[1] for s in timings] for name, timings in samples.items()}
    for name, label in (("direct", "direct to upstream"), ("proxy", "through the proxy")):
        print(
            f"  {label:<20} TTFT p50 {statistics.median(ttft[name]):6.2f}  "
            f"p90 {percentile(ttft[name], 0.9):6.2f}   "
            f"total p50 {statistics.median(total[name]):7.2f}"
        )
    added_ttft = statistics.median(ttft["proxy"]) - statistics.median(ttft["direct"])
    added_total = statistics.median(total["proxy"]) - statistics.median(total["direct"])
    print(
        f"  added by the proxy   TTFT p50 {added_ttft:+6.2f}"
        f"{'':16}total p50 {added_total:+7.2f} "
        f"({added_total / statistics.median(total['direct']) * 100:+.1f}%)"
    )


if __name__ == "__main__":
    main()
