"""A writer process for the crash and multi-process tests.

``python -m tests.storage.writer URL COUNT PREFIX [THREADS]`` appends COUNT runs
per thread, one event per call, and prints each event id once its append has
returned, that is, once it is acknowledged. With several threads the store's
writer commits their events together (group commit).
"""

from __future__ import annotations

import sys
import threading

from tuneback.domain import Run, RunCompleted
from tuneback.storage import Store

_PRINT = threading.Lock()


def _write(store: Store, prefix: str, count: int) -> None:
    for i in range(count):
        run = Run(id=f"{prefix}-{i}", project="load", output=f"answer {i}")
        event = store.append(RunCompleted(run=run), event_id=f"{prefix}-e{i}")
        with _PRINT:
            print(event.id, flush=True)


def main() -> None:
    url, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    with Store(url) as store:
        print("ready", flush=True)
        if threads == 1:
            _write(store, prefix, count)
            return
        workers = [
            threading.Thread(target=_write, args=(store, f"{prefix}{n}", count))
            for n in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


if __name__ == "__main__":
    main()
