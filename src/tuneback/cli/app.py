"""The root ``tuneback`` command and what every subcommand shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from tuneback.__about__ import __version__
from tuneback.config import Settings
from tuneback.errors import TuneBackError
from tuneback.storage import Store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


HELP = """\
Collect human feedback on language-model answers and turn it into better models.

Data lives in SQLite by default (a file in your user data directory); point
TUNEBACK_DATABASE_URL at postgresql://… for production. `tuneback settings`
lists every environment variable.
"""

EPILOG = """\
Start here:

\b
  tuneback serve                          chat on the embedded model: http://127.0.0.1:8000
  tuneback serve --pages chat,dashboard   add the dashboard, runs explorer and datasets
  tuneback chat -m echo                   chat and rate in the terminal
  tuneback keys create --project myapp    a key for logging runs from your app (SDK, REST, proxy)
  tuneback stats --period 30d             what the feedback says
  tuneback leaderboard                    models ranked by people's votes, with intervals
  tuneback export dpo --output data/      training data from the feedback
  tuneback train sft --base-model DIR --output tuned/
"""

app = typer.Typer(
    help=HELP,
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"tuneback {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Collect human feedback on language-model answers and turn it into better models."""


class Role(StrEnum):
    """The roles of accounts and API keys, as a command-line choice."""

    owner = "owner"
    annotator = "annotator"
    user = "user"


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "-d",
        envvar="TUNEBACK_DATABASE_URL",
        show_envvar=True,
        help="sqlite:///path.db or postgresql://user@host/db (default: SQLite in the data dir).",
    ),
]


@contextmanager
def one_line_errors() -> Iterator[None]:
    """tuneback's own errors as one line on stderr and exit status 1, never a traceback."""
    try:
        yield
    except TuneBackError as exc:
        err.print(f"error: {exc.message}", markup=False)
        raise typer.Exit(1) from None


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment, with the options given on the command line on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return Settings(**given)


def open_store(database_url: str | None, *, migrate_schema: bool = True) -> Store:
    return Store(
        settings_with(database_url=database_url).database_url, migrate_schema=migrate_schema
    )
