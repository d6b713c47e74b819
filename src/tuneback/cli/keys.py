"""``tuneback keys``: make, list and revoke the API keys that /api/v1 and /v1 require."""

from __future__ import annotations

from typing import Annotated

import typer

from tuneback.cli.app import DatabaseOption, Role, app, err, open_store, out
from tuneback.services.audit import CLI_ACTOR
from tuneback.services.keys import KeyService

keys_app = typer.Typer(
    help="API keys: each belongs to one project; only a hash is stored.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    project: Annotated[str, typer.Option("--project", "-p", help="Project the key can use.")],
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
    role: Annotated[
        Role,
        typer.Option(
            help=(
                "What the key may do: owner (everything in its project), "
                "annotator (read runs, review), user (an app logging runs and feedback)."
            )
        ),
    ] = Role.owner,
    database_url: DatabaseOption = None,
) -> None:
    """Make a key and print it once: it cannot be shown again.

    An app that only logs runs and its users' feedback needs no more than --role user.
    """
    with open_store(database_url) as store:
        made = KeyService(store).create(project, name=name, role=role.value, actor=CLI_ACTOR)
    out.print(made.key, markup=False)
    err.print(
        f"{role.value} key {made.record.id} for project {project}: "
        "store it now, it is not shown again",
        markup=False,
    )


@keys_app.command("list")
def list_keys(
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """List keys (id, project, role, prefix, name, created, revoked) as tab-separated lines."""
    with open_store(database_url) as store:
        records = KeyService(store).list(project)
    for record in records:
        revoked = record.revoked_at.isoformat() if record.revoked_at else "active"
        fields = [
            record.id,
            record.project,
            record.role,
            f"{record.prefix}…",
            record.name or "",
            record.created_at.isoformat(),
            revoked,
        ]
        typer.echo("\t".join(fields))


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, from `tuneback keys list`.")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a key: requests with it (and feedback tokens it made) are refused from now on."""
    with open_store(database_url) as store:
        record = KeyService(store).revoke(key_id, actor=CLI_ACTOR)
    out.print(f"revoked {record.id} ({record.project})", markup=False)
