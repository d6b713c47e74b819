"""The ``tuneback`` command line."""

import sys

from tuneback.cli import chat, db, events, export, serve, settings, stats, train
from tuneback.cli import keys as keys  # registers `tuneback keys`
from tuneback.cli import leaderboard as leaderboard  # registers `tuneback leaderboard`
from tuneback.cli import relay as relay  # registers `tuneback relay`
from tuneback.cli import users as users  # registers `tuneback users`
from tuneback.cli.app import app, err
from tuneback.errors import TuneBackError

__all__ = ["app", "main"]

# Imported for the commands they register.
_COMMANDS = (chat, db, events, export, serve, settings, stats, train)


def main() -> None:
    """Run the CLI; tuneback's own errors become one line on stderr and exit status 1."""
    try:
        app(prog_name="tuneback")
    except TuneBackError as exc:
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(1)
