"""Conversations and their messages, for apps that keep their chat history in tuneback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tuneback.domain import Conversation, Message, validate
from tuneback.server.access import key_rule
from tuneback.server.api.deps import ApiDep
from tuneback.server.api.schemas import (
    ConversationCreate,
    ConversationPublic,
    ConversationsPublic,
    MessageCreate,
    MessagePublic,
    MessagesPublic,
)
from tuneback.server.auth import Caller, CallerDep
from tuneback.server.deps import StoreDep
from tuneback.storage import Store

router = APIRouter(prefix="/conversations", tags=["conversations"])


def _visible(store: Store, caller: Caller, conversation_id: str) -> Conversation:
    conversation = store.get_conversation(conversation_id)
    caller.check(conversation.project, "conversation", conversation_id)
    return conversation


@router.post("", status_code=201, summary="Start a conversation", dependencies=[key_rule("log")])
def create_conversation(
    body: ConversationCreate, caller: CallerDep, api: ApiDep
) -> ConversationPublic:
    data = body.model_dump(exclude_none=True, exclude={"project"})
    data["project"] = caller.project(body.project)
    conversation = api.runs.start_conversation(validate(Conversation, data, what="conversation"))
    caller.check(conversation.project, "conversation", conversation.id)
    return ConversationPublic.model_validate(conversation.__dict__)


@router.get("", summary="Conversations, newest first", dependencies=[key_rule("read")])
def list_conversations(
    caller: CallerDep,
    store: StoreDep,
    project: str | None = None,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConversationsPublic:
    found = store.list_conversations(caller.project(project), user=user, limit=limit)
    data = [ConversationPublic.model_validate(c.__dict__) for c in found]
    return ConversationsPublic(data=data, count=len(data))


@router.get("/{conversation_id}", summary="One conversation", dependencies=[key_rule("read")])
def get_conversation(
    conversation_id: str, caller: CallerDep, store: StoreDep
) -> ConversationPublic:
    return ConversationPublic.model_validate(_visible(store, caller, conversation_id).__dict__)


@router.post("/{conversation_id}/end", summary="End a conversation", dependencies=[key_rule("log")])
def end_conversation(
    conversation_id: str, caller: CallerDep, store: StoreDep, api: ApiDep
) -> ConversationPublic:
    _visible(store, caller, conversation_id)
    return ConversationPublic.model_validate(api.runs.end_conversation(conversation_id).__dict__)


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    summary="Add a message",
    dependencies=[key_rule("log")],
)
def add_message(
    conversation_id: str, body: MessageCreate, caller: CallerDep, store: StoreDep, api: ApiDep
) -> MessagePublic:
    conversation = _visible(store, caller, conversation_id)
    data = body.model_dump(exclude_none=True)
    data.update(conversation_id=conversation.id, project=conversation.project)
    message = api.runs.add_message(validate(Message, data, what="message"))
    return MessagePublic.model_validate(message.__dict__)


@router.get(
    "/{conversation_id}/messages",
    summary="Every message, all branches, oldest first",
    dependencies=[key_rule("read")],
)
def list_messages(conversation_id: str, caller: CallerDep, store: StoreDep) -> MessagesPublic:
    _visible(store, caller, conversation_id)
    data = [
        MessagePublic.model_validate(m.__dict__)
        for m in store.conversation_messages(conversation_id)
    ]
    return MessagesPublic(data=data, count=len(data))
