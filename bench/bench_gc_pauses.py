"""Garbage-collector pauses under load: the collector as `tuneback serve` tunes it, and as is.

A tuneback server process holds ~150,000 long-lived objects (routes, validators,
tables, the model catalog). Python's full collection walks all of them every few
hundred requests while every request in flight waits, which shows as the tail of
the latency distribution. ``tuneback serve`` freezes them once started and
collects the youngest generation less often (``create_app(own_process=True)``,
see ``tune_garbage_collector``). This drives the real app in-process (httpx's
ASGI transport, SQLite, the echo model) with batches of concurrent chat
completions, once per mode, each in a fresh child process, and reports every
collection by generation: count, total and longest pause in CPU time (so other
work on the machine moves the numbers less than wall-clock time would).

    python bench/bench_gc_pauses.py [--chats 3200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("as served (frozen, young every 10,000)", "Python's default")


def measure(served: bool, chats: int, concurrency: int) -> dict[str, Any]:
    import httpx

    from tuneback.config import Settings
    from tuneback.models import EchoModel
    from tuneback.server import create_app

    folder = Path(tempfile.mkdtemp())
    settings = Settings(
        database_url=f"sqlite:///{folder / 'bench.db'}", auth=False, allowed_hosts=["bench"]
    )
    app = create_app(settings, models=[EchoModel()], own_process=served)
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = 0.0

    def on_collect(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.process_time()
        else:
            pauses[info["generation"]].append(time.process_time() - started)

    async def drive() -> float:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

                async def chat(n: int) -> None:
                    body = {"model": "echo", "messages": [{"role": "user", "content": f"hi {n}"}]}
                    answer = await client.post("/v1/chat/completions", json=body)
                    answer.raise_for_status()

                gc.callbacks.append(on_collect)
                began = time.process_time()
                for batch in range(chats // concurrency):
                    await asyncio.gather(
                        *(chat(batch * concurrency + k) for k in range(concurrency))
                    )
                spent = time.process_time() - began
                gc.callbacks.remove(on_collect)
                return spent

    cpu = asyncio.run(drive())
    return {
        "cpu_ms": cpu * 1000,
        "generations": {
            g: {"count": len(p), "total_ms": sum(p) * 1000, "max_ms": max(p, default=0) * 1000}
            for g, p in pauses.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=3200, help="chat completions per mode")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--child", choices=["served", "default"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.child == "served", args.chats, args.concurrency)
        print(json.dumps(result))
        return
    rows = []
    for mode, child in zip(MODES, ["served", "default"], strict=True):
        command = [sys.executable, __file__, "--child", child]
        command += ["--chats", str(args.chats), "--concurrency", str(args.concurrency)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append((mode, json.loads(done.stdout.splitlines()[-1])))
    print(f"{args.chats} chat completions, {args.concurrency} in flight, SQLite, echo model")
    print("| mode | CPU ms | full passes | their total ms | longest ms | gen 0/1 total ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode, r in rows:
        g = r["generations"]
        young = g["0"]["total_ms"] + g["1"]["total_ms"]
        print(
            f"| {mode} | {r['cpu_ms']:.0f} | {g['2']['count']} | {g['2']['total_ms']:.0f} "
            f"| {g['2']['max_ms']:.1f} | {young:.0f} |"
        )


if __name__ == "__main__":
    main()
