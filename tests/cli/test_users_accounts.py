"""``tuneback users add / list / passwd / disable``: accounts from the command line."""

from __future__ import annotations

from typer.testing import CliRunner

from tuneback.cli import app
from tuneback.cli.serve import who_may_open_the_pages
from tuneback.services.accounts import AccountService
from tuneback.services.invitations import Invitations
from tuneback.services.keys import KeyService
from tuneback.storage import Store

runner = CliRunner()


def test_add_list_passwd_and_disable(store: Store) -> None:
    url = str(store.url)
    added = runner.invoke(
        app,
        [
            "users",
            "add",
            "rita",
            "--role",
            "annotator",
            "-p",
            "shop",
            "--password-stdin",
            "-d",
            url,
        ],
        input="a long enough secret\n",
    )
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "added annotator rita (shop); they sign in at /login"
    accounts = AccountService(store)
    assert accounts.check_password("rita", "a long enough secret") is not None

    listed = runner.invoke(app, ["users", "list", "-d", url])
    fields = listed.stdout.strip().split("\t")
    assert fields[:3] == ["rita", "annotator", "shop"]
    assert fields[4] == "active"

    changed = runner.invoke(
        app, ["users", "passwd", "rita", "--password-stdin", "-d", url], input="another secret!\n"
    )
    assert changed.exit_code == 0, changed.output
    assert accounts.check_password("rita", "a long enough secret") is None
    assert accounts.check_password("rita", "another secret!") is not None

    disabled = runner.invoke(app, ["users", "disable", "rita", "-d", url])
    assert disabled.stdout.strip() == "rita disabled"
    assert accounts.check_password("rita", "another secret!") is None
    listed = runner.invoke(app, ["users", "list", "-d", url])
    assert listed.stdout.strip().split("\t")[4] == "disabled"


def test_mistakes_get_one_clear_line(store: Store) -> None:
    url = str(store.url)
    short = runner.invoke(
        app, ["users", "add", "bob", "--password-stdin", "-d", url], input="short\n"
    )
    assert short.exit_code == 1
    assert short.stderr.strip() == "error: the password needs at least 8 characters"
    missing = runner.invoke(app, ["users", "disable", "nobody", "-d", url])
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: no account called 'nobody'"
    help_text = runner.invoke(app, ["users", "--help"]).stdout
    assert "tuneback users add ann --role owner" in help_text


def test_invite_prints_a_link_the_server_accepts(store: Store) -> None:
    made = runner.invoke(
        app,
        ["users", "invite", "-p", "shop", "--days", "2", "-d", str(store.url)],
        env={"TUNEBACK_BASE_URL": "https://chat.example.com"},
    )
    assert made.exit_code == 0, made.output
    link = made.stdout.strip()
    assert link.startswith("https://chat.example.com/join/inv1.")
    assert made.stderr.strip() == "invitation to the chat of project shop, for 2 days"
    invitation = Invitations(KeyService(store)).check(link.rsplit("/", 1)[1])
    assert invitation.project == "shop"


def test_serve_says_who_may_open_the_pages(store: Store) -> None:
    assert "on this machine you are the owner" in who_may_open_the_pages(store, "127.0.0.1")
    shared = who_may_open_the_pages(store, "0.0.0.0")
    assert shared == (
        "  pages: no accounts yet, so the dashboard, runs, review and datasets are "
        "closed to everyone; add an owner: tuneback users add NAME --role owner"
    )
    AccountService(store).add("ann", role="owner", password="a long enough secret")
    assert who_may_open_the_pages(store, "0.0.0.0") == (
        "  pages: sign in at /login (accounts: tuneback users list)"
    )
