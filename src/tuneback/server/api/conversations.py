"""Conversations and their messages, for apps that keep their chat history in tuneback,
and feedback on a whole conversation or on one message."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tuneback.domain import Conversation, Message, validate
from tuneback.server.access import key_rule
from tuneback.server.api.deps import feedback_public
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import (
    ConversationCreate,
    ConversationFeedbackCreate,
    ConversationPublic,
    ConversationsPublic,
    FeedbackPublic,
    MessageCreate,
    MessagePublic,
    MessagesPublic,
)
from tuneback.server.auth import Caller, CallerDep
from tuneback.server.deps import Services, ServicesDep

router = resource_router("/conversations", "conversations")


def _visible(services: Services, caller: Caller, conversation_id: str) -> Conversation:
    conversation = services.store.get_conversation(conversation_id)
    caller.check(conversation.project, "conversation", conversation_id)
    return conversation


@router.post("", status_code=201, summary="Start a conversation", dependencies=[key_rule("log")])
def create_conversation(
    body: ConversationCreate, caller: CallerDep, services: ServicesDep
) -> ConversationPublic:
    data = body.model_dump(exclude_none=True, exclude={"project"})
    data["project"] = caller.project(body.project)
    conversation = services.runs.start_conversation(
        validate(Conversation, data, what="conversation")
    )
    caller.check(conversation.project, "conversation", conversation.id)
    return ConversationPublic.model_validate(conversation.__dict__)


@router.get("", summary="Conversations, newest first", dependencies=[key_rule("read")])
def list_conversations(
    caller: CallerDep,
    services: ServicesDep,
    project: str | None = None,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConversationsPublic:
    found = services.store.list_conversations(caller.project(project), user=user, limit=limit)
    data = [ConversationPublic.model_validate(c.__dict__) for c in found]
    return ConversationsPublic(data=data, count=len(data))


@router.get("/{conversation_id}", summary="One conversation", dependencies=[key_rule("read")])
def get_conversation(
    conversation_id: str, caller: CallerDep, services: ServicesDep
) -> ConversationPublic:
    return ConversationPublic.model_validate(_visible(services, caller, conversation_id).__dict__)


@router.post("/{conversation_id}/end", summary="End a conversation", dependencies=[key_rule("log")])
def end_conversation(
    conversation_id: str, caller: CallerDep, services: ServicesDep
) -> ConversationPublic:
    _visible(services, caller, conversation_id)
    ended = services.runs.end_conversation(conversation_id)
    return ConversationPublic.model_validate(ended.__dict__)


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    summary="Add a message",
    dependencies=[key_rule("log")],
)
def add_message(
    conversation_id: str, body: MessageCreate, caller: CallerDep, services: ServicesDep
) -> MessagePublic:
    conversation = _visible(services, caller, conversation_id)
    data = body.model_dump(exclude_none=True)
    data.update(conversation_id=conversation.id, project=conversation.project)
    message = services.runs.add_message(validate(Message, data, what="message"))
    return MessagePublic.model_validate(message.__dict__)


@router.get(
    "/{conversation_id}/messages",
    summary="Every message, all branches, oldest first",
    dependencies=[key_rule("read")],
)
def list_messages(conversation_id: str, caller: CallerDep, services: ServicesDep) -> MessagesPublic:
    _visible(services, caller, conversation_id)
    data = [
        MessagePublic.model_validate(m.__dict__)
        for m in services.store.conversation_messages(conversation_id)
    ]
    return MessagesPublic(data=data, count=len(data))


@router.post(
    "/{conversation_id}/feedback",
    status_code=201,
    summary="Record feedback on a whole conversation",
    dependencies=[key_rule("log")],
)
def create_conversation_feedback(
    conversation_id: str,
    body: ConversationFeedbackCreate,
    caller: CallerDep,
    services: ServicesDep,
) -> FeedbackPublic:
    return _record(services, caller, body, conversation_id, None)


@router.post(
    "/{conversation_id}/messages/{message_id}/feedback",
    status_code=201,
    summary="Record feedback on one message",
    description=(
        "An answer with a run is rated through its run, as `POST /feedback` with its "
        "`run_id` would; any other message (a question) is rated on the conversation, "
        "with `message_id` in the feedback's metadata."
    ),
    dependencies=[key_rule("log")],
)
def create_message_feedback(
    conversation_id: str,
    message_id: str,
    body: ConversationFeedbackCreate,
    caller: CallerDep,
    services: ServicesDep,
) -> FeedbackPublic:
    return _record(services, caller, body, conversation_id, message_id)


def _record(
    services: Services,
    caller: Caller,
    body: ConversationFeedbackCreate,
    conversation_id: str,
    message_id: str | None,
) -> FeedbackPublic:
    recorded = services.feedback.record_on_conversation(
        conversation_id=conversation_id,
        message_id=message_id,
        key=body.key,
        scope=caller.scope,
        value=body.value,
        score=body.score,
        kind=body.kind,
        comment=body.comment,
        correction=body.correction,
        user=body.user,
        source=body.source,
        metadata=body.metadata,
        feedback_id=body.id,
    )
    return feedback_public(recorded)
