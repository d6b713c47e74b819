"""The ``tuneback`` command line."""

from tuneback.cli import db, events, serve, settings
from tuneback.cli.app import app

__all__ = ["app", "main"]

_COMMANDS = (db, events, serve, settings)  # imported for the commands they register


def main() -> None:
    app(prog_name="tuneback")
