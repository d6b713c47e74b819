"""A writer process for the crash and multi-process tests.

``python -m tests.storage.writer URL COUNT PREFIX`` appends COUNT runs one
transaction each and prints each event id once its append has returned, that is,
once it is acknowledged.
"""

from __future__ import annotations

import sys

from tuneback.domain import Run, RunCompleted
from tuneback.storage import Store


def main() -> None:
    url, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with Store(url) as store:
        print("ready", flush=True)
        for i in range(count):
            run = Run(id=f"{prefix}-{i}", project="load", output=f"answer {i}")
            event = store.append(RunCompleted(run=run), event_id=f"{prefix}-e{i}")
            print(event.id, flush=True)


if __name__ == "__main__":
    main()
