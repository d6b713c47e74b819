"""``tuneback keys``: the key is printed once, listed by prefix only, and revocable."""

import re

from typer.testing import CliRunner

from tuneback.cli import app
from tuneback.services.keys import KeyService
from tuneback.storage import Store


def test_create_list_revoke(store: Store) -> None:
    runner = CliRunner()
    url = str(store.url.render_as_string(hide_password=False))
    made = runner.invoke(app, ["keys", "create", "--project", "demo", "--name", "ci", "-d", url])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert re.fullmatch(r"tb_[A-Za-z0-9_\-]{43}", key)
    record = KeyService(store).verify(key)
    assert record is not None
    assert (record.project, record.name) == ("demo", "ci")

    listed = runner.invoke(app, ["keys", "list", "-d", url])
    fields = listed.stdout.strip().split("\t")
    assert fields[:5] == [record.id, "demo", "owner", f"{key[:10]}…", "ci"]
    assert fields[6] == "active"
    assert key not in listed.stdout

    revoked = runner.invoke(app, ["keys", "revoke", record.id, "-d", url])
    assert revoked.stdout.strip() == f"revoked {record.id} (demo)"
    assert KeyService(store).verify(key) is None
