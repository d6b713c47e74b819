"""PostgreSQL's pooled connections are pinged before use only after sitting idle.

A connection the server dropped while it sat in the pool is replaced before a
read or a write uses it; one returned a moment ago is handed out without the
extra round trip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.factories import T0
from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.storage import Store
from tuneback.storage import engine as engine_module


@pytest.fixture
def dialect() -> str:
    """PostgreSQL only: an SQLite database is a file, with no connection to lose."""
    return "postgresql"


@pytest.fixture
def named_store(database_url: str) -> Iterator[tuple[Store, str]]:
    """A store whose connections carry an application name of their own."""
    name = f"tb_ping_{uuid.uuid4().hex[:10]}"
    with Store(f"{database_url}&application_name={name}") as store:
        yield store, database_url.split("?", 1)[0]


def count_pings(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = store.engine.dialect
    pinged = [0]
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pinged[0] += 1
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pinged


def drop_connections(admin_url: str, name: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def run(n: int) -> RunCompleted:
    return RunCompleted(
        run=Run(
            id=f"run-{n}",
            model="m",
            inputs=[ChatMessage(role="user", content="hi")],
            output="yo",
            created_at=T0,
        )
    )


def test_connections_dropped_while_idle_are_replaced_before_reads_and_writes(
    named_store: tuple[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, admin_url = named_store
    monkeypatch.setattr(engine_module, "IDLE_BEFORE_PING", 0.05)
    store.append(run(1))
    assert store.get_run("run-1").output == "yo"
    name = store.engine.url.query["application_name"]
    assert drop_connections(admin_url, str(name)) >= 1
    time.sleep(0.2)

    assert store.get_run("run-1").output == "yo"
    time.sleep(0.2)
    store.append(run(2))
    assert [r.id for r in store.list_runs(limit=10)] == ["run-2", "run-1"]


def test_a_connection_just_returned_is_handed_out_without_a_ping(
    named_store: tuple[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = named_store
    monkeypatch.setattr(engine_module, "IDLE_BEFORE_PING", 5.0)
    store.append(run(1))
    pinged = count_pings(store, monkeypatch)
    for n in range(2, 12):
        store.append(run(n))
        assert store.get_run(f"run-{n}").id == f"run-{n}"
    assert pinged[0] == 0

    monkeypatch.setattr(engine_module, "IDLE_BEFORE_PING", 0.05)
    time.sleep(0.2)
    store.get_run("run-1")
    assert pinged[0] == 1
