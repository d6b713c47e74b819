import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tests.factories import conversation_events
from tuneback.storage import Store, migrate
from tuneback.storage import tables as t


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    store = Store(database_url, migrate_schema=False)
    try:
        assert migrate.current_revision(store.engine) is None
        migrate.upgrade(store.engine)
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        tables = set(inspect(store.engine).get_table_names())
        assert {table.name for table in t.PROJECTIONS} | {"events"} <= tables

        migrate.downgrade(store.engine, "base")
        assert migrate.current_revision(store.engine) is None
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}

        migrate.upgrade(store.engine)
        store.append_many(conversation_events())
        assert store.info()["last_seq"] == len(conversation_events())
    finally:
        store.close()


# Neither database reflects expression indexes (runs by when they ran), so the
# comparison skips that one index and says so; 0011 creates it by name.
@pytest.mark.filterwarnings("ignore:.*expression-based index ix_runs_project_ran_at")
@pytest.mark.filterwarnings("ignore:.*expression-based index 'ix_runs_project_ran_at'")
def test_migrations_create_exactly_the_tables_the_code_declares(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, t.metadata)
    assert diff == []


def test_opening_a_store_twice_migrates_once(database_url: str) -> None:
    with Store(database_url) as first, Store(database_url) as second:
        assert migrate.current_revision(first.engine) == migrate.current_revision(second.engine)


def test_upgrading_an_old_schema_keeps_its_data(database_url: str) -> None:
    # Write events with the newest code, then take the schema back to 0001 the
    # way an old install would have it, and upgrade again.
    with Store(database_url) as store:
        written = store.append_many(conversation_events()[:-2])  # events 0001 knew
        migrate.downgrade(store.engine, "0001")
        assert migrate.current_revision(store.engine) == "0001"
        migrate.upgrade(store.engine)
        assert store.events_after(0) == written
        assert store.rebuild() == len(written)
        assert store.get_project("demo").settings.feedback == ["thumbs", "comment", "correction"]
