"""Several server processes: what each worker of ``tuneback serve --workers N`` builds.

uvicorn starts each worker in its own process and imports the app from here;
the options of the ``serve`` command travel in the environment. Every worker
has its own store (and writer thread) on the same PostgreSQL database. What
each process keeps in memory, and why two workers still behave as one:

* the log and every projection are in the database; writers in different
  processes queue only for the log's tail (see :mod:`tuneback.storage.commit`);
* a project's rules are cached for a second, so a change made through one
  worker is seen by the others within that time;
* known projects are inserted with ``ON CONFLICT DO NOTHING``; review leases are
  taken atomically in the database; the feedback-token secret is stored once
  and read by every worker, so any worker checks a token another one signed;
* a streaming reply is held by the worker that runs it: the stop button asks
  the server to stop it and, when the worker it reached does not hold it,
  closes the stream, which the holding worker notices and records as stopped.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from tuneback.config import Settings
from tuneback.errors import ConfigurationError

OPTIONS_VARIABLE = "TUNEBACK_SERVE_OPTIONS"
"""Set by ``tuneback serve`` for its workers: JSON with the models and page groups."""


def worker_environment(
    settings: Settings, *, models: list[str], pages: list[str]
) -> dict[str, str]:
    """What the workers need in their environment to build the same app as ``serve``."""
    return {
        "TUNEBACK_DATABASE_URL": settings.database_url,
        "TUNEBACK_PROJECT": settings.project,
        "TUNEBACK_AUTH": "true" if settings.auth else "false",
        "TUNEBACK_HOST": settings.host,
        "TUNEBACK_PORT": str(settings.port),
        "TUNEBACK_LOG_LEVEL": settings.log_level,
        "TUNEBACK_PROXY_ANY_MODEL": "true" if settings.proxy_any_model else "false",
        OPTIONS_VARIABLE: json.dumps({"models": models, "pages": pages}),
    }


def refuse_sqlite(database_url: str, workers: int) -> None:
    if workers > 1 and database_url.startswith("sqlite"):
        raise ConfigurationError(
            f"--workers {workers} needs PostgreSQL: SQLite takes one writer at a time, so "
            "several processes would only queue on its file lock. Serve one process (it "
            "commits concurrent requests together), or set TUNEBACK_DATABASE_URL="
            "postgresql://user@host/db"
        )


def create_worker_app() -> FastAPI:
    """The app of one worker, from the options ``tuneback serve`` left in the environment."""
    from tuneback.server.app import create_app

    raw = os.environ.get(OPTIONS_VARIABLE)
    if raw is None:
        raise ConfigurationError(
            f"{OPTIONS_VARIABLE} is not set: start workers with tuneback serve"
        )
    options: dict[str, Any] = json.loads(raw)
    return create_app(
        Settings(), models=options["models"], pages=options["pages"], own_process=True
    )
