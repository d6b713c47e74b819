"""A writer process for the crash and multi-process tests.

``python -m tests.storage.writer URL COUNT PREFIX [THREADS]`` appends COUNT runs
per thread, one event per call, and prints each event id once its append has
returned, that is, once it is acknowledged. With several threads the store's
writer commits their events together (group commit).
"""

from __future__ import annotations

import sys
import threading
import time

from tuneback.domain import Run, RunCompleted, StoredEvent
from tuneback.errors import StorageError
from tuneback.storage import Store

_PRINT = threading.Lock()
ATTEMPTS = 5


def append_run(store: Store, prefix: str, i: int) -> StoredEvent:
    """Append run ``i`` as a client does: a refused write (the database busy past its
    timeout on a loaded machine) is retried with the same id, which makes it a no-op
    if it was stored after all."""
    run = Run(id=f"{prefix}-{i}", project="load", output=f"answer {i}")
    for attempt in range(ATTEMPTS):
        try:
            return store.append(RunCompleted(run=run), event_id=f"{prefix}-e{i}")
        except StorageError:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _write(store: Store, prefix: str, count: int) -> None:
    for i in range(count):
        event = append_run(store, prefix, i)
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
