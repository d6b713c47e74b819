"""``tuneback users``: the end users who chat and rate, by the name their data carries."""

from __future__ import annotations

from typing import Annotated

import typer

from tuneback.cli.app import DatabaseOption, app, err, open_store, out
from tuneback.errors import TuneBackError
from tuneback.services.audit import CLI_ACTOR
from tuneback.services.users import UserService

users_app = typer.Typer(
    help="End users: the people who chat and rate, named by the `user` on their data.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

FORGET_HELP = """\
Forget a user: remove everything they wrote and everything made from it.

Removes the conversations NAME started (every message and run in them), the
runs logged with their name, the feedback and comparisons they gave, feedback
and comparisons on their answers, and dataset items copied from their runs,
from every table. Their events in the log become tombstones that keep only
their place (seq, id, time), so `tuneback db rebuild` cannot bring the data
back, exports no longer contain it, and `tuneback events` shows
`event.forgotten` where it was. Writes that retry a forgotten event are
refused. The forget is audited (an `audit.recorded` event with action
user.forgotten and the counts, never the content).

It reaches this database only: backups, files already exported and
followers that already read the events keep their copies. The name itself
stays in the audit. This cannot be undone.

\b
  tuneback users forget alice                 asks, then forgets alice everywhere
  tuneback users forget alice --project shop  only in project shop
  tuneback users forget alice --yes           no question (scripts)
"""


@users_app.command("forget", help=FORGET_HELP)
def forget(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The user's name, as their data carries it.")
    ],
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project (default: all).")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Forget without asking for confirmation.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    where = f"project {project}" if project is not None else "every project"
    question = f"Forget user {name!r} in {where}? This cannot be undone"
    if not yes and not typer.confirm(question, err=True):
        err.print("nothing was forgotten", markup=False)
        raise typer.Exit(1)
    try:
        with open_store(database_url) as store:
            counts = UserService(store).forget(name, project=project, actor=CLI_ACTOR)
    except TuneBackError as exc:
        err.print(f"error: {exc.message}", markup=False)
        raise typer.Exit(1) from None
    removed = ", ".join(
        f"{count} {kind.replace('_', ' ')}" for kind, count in counts.as_dict().items()
    )
    out.print(f"forgot {name} in {where}: {removed}", markup=False)
