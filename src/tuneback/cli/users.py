"""``tuneback users``: accounts that sign in to the pages, and forgetting an end user."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated

import typer

from tuneback.cli.app import (
    DatabaseOption,
    Role,
    app,
    err,
    one_line_errors,
    open_store,
    out,
    settings_with,
)
from tuneback.services.accounts import AccountService
from tuneback.services.audit import CLI_ACTOR
from tuneback.services.invitations import Invitations
from tuneback.services.keys import KeyService
from tuneback.services.users import UserService

USERS_HELP = """\
People: the accounts that sign in to the pages, and the end users whose data
can be forgotten.

While no account exists and the server listens on loopback only, whoever
opens the pages on this machine is the owner. Add the first owner before
sharing the server; from then on everyone signs in at /login.

\b
  tuneback users add ann --role owner           asks for a password
  tuneback users add rita --role annotator -p shop
  echo "$PW" | tuneback users add bot --role user --password-stdin
  tuneback users list
  tuneback users invite -p shop --days 14       a link into a chat that is by invitation
  tuneback users forget alice                   an end user's data, everywhere
"""

users_app = typer.Typer(help=USERS_HELP, no_args_is_help=True)
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
    with one_line_errors(), open_store(database_url) as store:
        counts = UserService(store).forget(name, project=project, actor=CLI_ACTOR)
    removed = ", ".join(
        f"{count} {kind.replace('_', ' ')}" for kind, count in counts.as_dict().items()
    )
    out.print(f"forgot {name} in {where}: {removed}", markup=False)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return password


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The name to sign in with.")],
    role: Annotated[
        Role,
        typer.Option(
            help=(
                "owner: everything (dashboard, datasets, keys, exports); annotator: review "
                "queues and rating runs; user: the chat only."
            )
        ),
    ] = Role.user,
    project: Annotated[
        list[str] | None,
        typer.Option(
            "--project", "-p", help="A project the account works in (repeat; default: all)."
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Add an account that signs in at /login (the password is asked twice, never echoed)."""
    password = _password(password_stdin)
    with one_line_errors(), open_store(database_url) as store:
        account = AccountService(store).add(
            name, role=role.value, password=password, projects=project or (), actor=CLI_ACTOR
        )
    where = ", ".join(account.projects) or "every project"
    out.print(
        f"added {account.role} {account.name} ({where}); they sign in at /login", markup=False
    )


@users_app.command("list")
def list_accounts(database_url: DatabaseOption = None) -> None:
    """List accounts (name, role, projects, created, state) as tab-separated lines."""
    with open_store(database_url) as store:
        accounts = AccountService(store).list()
    for account in accounts:
        state = "active" if account.active else "disabled"
        projects = ",".join(account.projects) or "*"
        fields = [account.name, account.role, projects, account.created_at.isoformat(), state]
        typer.echo("\t".join(fields))


@users_app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The account.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Set a new password; every browser signed in as NAME is signed out."""
    password = _password(password_stdin)
    with one_line_errors(), open_store(database_url) as store:
        AccountService(store).set_password(name, password, actor=CLI_ACTOR)
    out.print(f"new password for {name}; their sessions ended", markup=False)


@users_app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The account.")],
    enable: Annotated[
        bool, typer.Option("--enable", help="Let the account sign in again.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Stop an account from signing in (its sessions end at once); --enable undoes it."""
    with one_line_errors(), open_store(database_url) as store:
        AccountService(store).set_disabled(name, not enable, actor=CLI_ACTOR)
    out.print(f"{name} {'enabled' if enable else 'disabled'}", markup=False)


@users_app.command("invite")
def invite(
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            help="The project whose chat the link opens.",
            envvar="TUNEBACK_PROJECT",
        ),
    ] = None,
    days: Annotated[float, typer.Option(min=0.001, max=365, help="How long the link works.")] = 7,
    database_url: DatabaseOption = None,
) -> None:
    """Print an invitation link to a chat served with --chat-access link.

    Whoever opens it and presses Join gets a pass for that browser; hand out as
    many links as you like (each works until it expires). Links are built on
    TUNEBACK_BASE_URL, else on TUNEBACK_HOST and TUNEBACK_PORT.

    \b
      tuneback serve --chat-access link --host 0.0.0.0
      tuneback users invite --days 14
    """
    settings = settings_with(database_url=database_url, project=project)
    with open_store(database_url) as store:
        token = Invitations(KeyService(store)).issue(
            settings.project, expires_in=timedelta(days=days)
        )
    base = settings.base_url or f"http://{settings.host}:{settings.port}"
    out.print(f"{base}/join/{token}", markup=False)
    err.print(
        f"invitation to the chat of project {settings.project}, for {days:g} days", markup=False
    )
