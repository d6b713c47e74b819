"""Renaming and deleting a conversation: projected on both databases, and a rebuild agrees."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from tests.factories import T0
from tests.storage.snapshot import projection_snapshot
from tuneback.cli import app
from tuneback.domain import (
    Conversation,
    ConversationDeleted,
    ConversationRenamed,
    ConversationStarted,
)
from tuneback.storage import Store


def _conversation(conversation_id: str, minute: int) -> Conversation:
    return Conversation(
        id=conversation_id,
        project="demo",
        user="ann",
        model="echo",
        started_at=T0 + timedelta(minutes=minute),
    )


def _write(store: Store) -> tuple[Conversation, Conversation]:
    kept, dropped = _conversation("c-kept", 1), _conversation("c-dropped", 2)
    store.append_many(
        [ConversationStarted(conversation=kept), ConversationStarted(conversation=dropped)]
    )
    store.append(
        ConversationRenamed(
            project="demo", conversation_id="c-kept", title="Trip plans", renamed_at=T0
        )
    )
    store.append_many(
        [
            ConversationRenamed(
                project="demo", conversation_id="c-kept", title="Trip to Lisbon", renamed_at=T0
            ),
            ConversationDeleted(
                project="demo", conversation_id="c-dropped", deleted_at=T0 + timedelta(hours=1)
            ),
        ]
    )
    return kept, dropped


def test_a_rename_sets_the_title_and_a_delete_hides_it_from_the_live_list(store: Store) -> None:
    kept, dropped = _write(store)
    assert store.get_conversation("c-kept") == kept.model_copy(update={"title": "Trip to Lisbon"})
    assert store.get_conversation("c-dropped") == dropped.model_copy(
        update={"deleted_at": T0 + timedelta(hours=1)}
    )
    assert [c.id for c in store.list_conversations("demo", user="ann")] == ["c-dropped", "c-kept"]
    assert [c.id for c in store.list_conversations("demo", user="ann", deleted=False)] == ["c-kept"]
    assert [c.id for c in store.list_conversations("demo", user="ann", deleted=True)] == [
        "c-dropped"
    ]
    assert [e.type for e in store.events_after(0)] == [
        "conversation.started",
        "conversation.started",
        "conversation.renamed",
        "conversation.renamed",
        "conversation.deleted",
    ]


def test_a_rebuild_replays_renames_and_deletes(store: Store) -> None:
    _write(store)
    before = projection_snapshot(store)
    assert store.rebuild() == 5
    assert projection_snapshot(store) == before


def test_db_rebuild_from_the_command_line_agrees(store: Store) -> None:
    _write(store)
    before = projection_snapshot(store)
    result = CliRunner().invoke(
        app, ["db", "rebuild", "-d", store.url.render_as_string(hide_password=False)]
    )
    assert (result.exit_code, result.output) == (0, "rebuilt the projections from 5 events\n")
    assert projection_snapshot(store) == before
    assert store.get_conversation("c-kept").title == "Trip to Lisbon"
    assert store.get_conversation("c-dropped").deleted_at == T0 + timedelta(hours=1)


def test_forgetting_the_owner_tombstones_the_renames_and_deletes(store: Store) -> None:
    _write(store)
    store.forget_user("ann", project="demo")
    assert [(e.type, getattr(e.payload, "was", None)) for e in store.events_after(0)] == [
        ("event.forgotten", "conversation.started"),
        ("event.forgotten", "conversation.started"),
        ("event.forgotten", "conversation.renamed"),
        ("event.forgotten", "conversation.renamed"),
        ("event.forgotten", "conversation.deleted"),
    ]
    assert "Lisbon" not in str([e.to_json_dict() for e in store.events_after(0)])
    assert store.list_conversations("demo") == []
