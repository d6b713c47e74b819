"""What the logging proxy adds: the same streamed completions, straight to the upstream and
through tuneback's ``/v1/chat/completions``, in the same run.

The upstream is the scripted OpenAI-compatible server of the tests, streaming
``--chunks`` chunks ``--chunk-ms`` apart (a model's pace). tuneback runs under
uvicorn in a child process with a SQLite database; requests are sequential, so
the numbers are latencies, not throughput. Prints the median time to first
token and total time of each path, and what the proxy added.

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


def measure(url: str, key: str, requests: int) -> tuple[float, float]:
    with httpx.Client(timeout=30) as client:
        for _ in range(10):
            timed(client, url, key)
        samples = [timed(client, url, key) for _ in range(requests)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


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
                # Alternate so both paths see the same machine load.
                direct_ttft, direct_total = measure(upstream.base_url, "none", args.requests)
                proxy_ttft, proxy_total = measure(f"{proxy}/v1", key, args.requests)
    finally:
        upstream.stop()
    print(
        f"streamed completions, {args.chunks} chunks {args.chunk_ms:g} ms apart, "
        f"median of {args.requests}:"
    )
    print(f"  direct to upstream   TTFT {direct_ttft:7.2f} ms   total {direct_total:7.2f} ms")
    print(f"  through the proxy    TTFT {proxy_ttft:7.2f} ms   total {proxy_total:7.2f} ms")
    print(
        f"  added by the proxy   TTFT {proxy_ttft - direct_ttft:+7.2f} ms   "
        f"total {proxy_total - direct_total:+7.2f} ms "
        f"({(proxy_total / direct_total - 1) * 100:+.1f}%)"
    )


if __name__ == "__main__":
    main()
