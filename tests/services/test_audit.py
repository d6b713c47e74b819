"""Audit events: key creation, revocation and exports leave a trace in the log, without secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.api.conftest import BASE, make_app
from tests.export.seed import seed
from tuneback.cli import app
from tuneback.domain import SYSTEM_PROJECT, AuditRecorded
from tuneback.errors import ValidationError
from tuneback.services.audit import AuditService
from tuneback.services.keys import KeyService
from tuneback.storage import Store

runner = CliRunner()


def _audits(store: Store) -> list[tuple[str, str, dict[str, object]]]:
    """(project, type, payload) of every audit event, oldest first."""
    return [
        (e.project, e.type, e.to_json_dict()["payload"])
        for e in store.events_after(0, types=["audit.recorded"])
    ]


def test_an_audit_without_a_project_is_logged_under_the_system_project(store: Store) -> None:
    event = AuditService(store).record(
        action="login.failed", actor="ann", target="ann", details={"reason": "bad password"}
    )
    assert (event.type, event.project) == ("audit.recorded", SYSTEM_PROJECT)
    assert event.payload == AuditRecorded(
        action="login.failed", actor="ann", target="ann", details={"reason": "bad password"}
    )
    assert _audits(store) == [
        (
            "_system",
            "audit.recorded",
            {
                "action": "login.failed",
                "actor": "ann",
                "project": None,
                "target": "ann",
                "details": {"reason": "bad password"},
            },
        )
    ]
    # An audit names projects without making them.
    AuditService(store).record(action="export", actor="cli", project="somewhere")
    assert store.list_projects() == []
    assert store.rebuild() == 2
    assert store.list_projects() == []


async def test_the_async_twin_waits_for_the_commit(store: Store) -> None:
    event = await AuditService(store).record_async(action="login", actor="ann")
    assert store.get_event(event.id) == event


def test_a_bad_action_is_refused_with_the_one_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError, match=r"invalid audit\.recorded payload: action"):
        AuditService(store).record(action="Key Created!")
    assert store.last_seq() == 0


def test_the_system_project_cannot_have_a_key(store: Store) -> None:
    with pytest.raises(ValidationError, match="'_system' is reserved"):
        KeyService(store).create(SYSTEM_PROJECT)
    assert store.last_seq() == 0


def test_keys_made_and_revoked_on_the_command_line_are_audited(store: Store) -> None:
    url = store.url.render_as_string(hide_password=False)
    made = runner.invoke(app, ["keys", "create", "-p", "demo", "--name", "ci", "-d", url])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    [record] = KeyService(store).list("demo")
    revoked = runner.invoke(app, ["keys", "revoke", record.id, "-d", url])
    assert revoked.exit_code == 0, revoked.output

    shown = runner.invoke(app, ["events", "--type", "audit.recorded", "-d", url])
    assert shown.exit_code == 0, shown.output
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    for line in lines:
        line.pop("id")
        line.pop("recorded_at")
    assert lines == [
        {
            "seq": 1,
            "type": "audit.recorded",
            "version": 1,
            "project": "demo",
            "payload": {
                "action": "key.created",
                "actor": "cli",
                "project": "demo",
                "target": record.id,
                "details": {"role": "owner", "name": "ci"},
            },
        },
        {
            "seq": 2,
            "type": "audit.recorded",
            "version": 1,
            "project": "demo",
            "payload": {
                "action": "key.revoked",
                "actor": "cli",
                "project": "demo",
                "target": record.id,
                "details": {},
            },
        },
    ]
    assert key not in shown.stdout
    assert record.prefix not in shown.stdout


async def test_keys_made_and_revoked_over_the_api_name_the_key_that_asked(store: Store) -> None:
    first = KeyService(store).create("demo").record
    caller = KeyService(store).create("demo")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(store)),
        base_url=BASE,
        headers={"Authorization": f"Bearer {caller.key}"},
    ) as client:
        made = await client.post("/api/v1/keys", json={"name": "bot"})
        assert made.status_code == 201, made.text
        revoked = await client.delete(f"/api/v1/keys/{first.id}")
        assert revoked.status_code == 200, revoked.text
    new_id = made.json()["id"]
    assert _audits(store)[2:] == [
        (
            "demo",
            "audit.recorded",
            {
                "action": "key.created",
                "actor": caller.record.id,
                "project": "demo",
                "target": new_id,
                "details": {"role": "owner", "name": "bot"},
            },
        ),
        (
            "demo",
            "audit.recorded",
            {
                "action": "key.revoked",
                "actor": caller.record.id,
                "project": "demo",
                "target": first.id,
                "details": {},
            },
        ),
    ]
    assert made.json()["key"] not in json.dumps(_audits(store))


def test_an_export_is_audited(database_url: str, tmp_path: Path) -> None:
    with Store(database_url) as store:
        seed(store)
        before = store.last_seq()
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", "kto", "--output", str(out), "--project", "demo", "-d", database_url]
    )
    assert result.exit_code == 0, result.output
    rows = int(re.search(r"(\d+) rows written", result.output).group(1))  # type: ignore[union-attr]
    with Store(database_url) as store:
        assert [e.type for e in store.events_after(before)] == ["audit.recorded"]
        assert _audits(store) == [
            (
                "demo",
                "audit.recorded",
                {
                    "action": "export",
                    "actor": "cli",
                    "project": "demo",
                    "target": str(out),
                    "details": {
                        "format": "kto",
                        "writer": "jsonl",
                        "rows": rows,
                        "filters": {"project": "demo"},
                    },
                },
            )
        ]
