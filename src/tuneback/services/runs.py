"""Runs, conversations and messages logged from outside: an app that calls its own model.

Every write carries the id of the thing it creates as its event id, so a client
that retries after a timeout gets the first result back instead of a duplicate.
Reusing an id for something different is a conflict, never a silent overwrite:
the store refuses it inside the write (see ``NewEvent``).
"""

from __future__ import annotations

from tuneback.domain import (
    Conversation,
    ConversationEnded,
    ConversationStarted,
    EventPayload,
    Message,
    MessageAdded,
    Run,
    RunCompleted,
    RunFailed,
)
from tuneback.errors import ValidationError
from tuneback.storage import NewEvent, Store


def run_event(run: Run) -> EventPayload:
    return RunCompleted(run=run) if run.status == "ok" else RunFailed(run=run)


def end_conversation(store: Store, conversation_id: str) -> Conversation:
    """End a conversation once (ending it again changes nothing); returns it as stored."""
    conversation = store.get_conversation(conversation_id)
    if conversation.ended_at is None:
        store.append(
            ConversationEnded(project=conversation.project, conversation_id=conversation.id)
        )
    return store.get_conversation(conversation_id)


class RunService:
    """Logs runs, conversations and messages into ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def log_run(self, run: Run) -> Run:
        """Store a run that happened elsewhere; returns the run as first stored."""
        payload = run_event(run)
        stored = self.store.append(payload, event_id=run.id)
        assert isinstance(stored.payload, RunCompleted | RunFailed)
        return stored.payload.run

    def start_conversation(self, conversation: Conversation) -> Conversation:
        payload = ConversationStarted(conversation=conversation)
        self.store.append(payload, event_id=conversation.id)
        return self.store.get_conversation(conversation.id)

    def add_message(self, message: Message) -> Message:
        conversation = self.store.get_conversation(message.conversation_id)
        if conversation.project != message.project:
            raise ValidationError("a message belongs to its conversation's project")
        if message.parent_id is not None:
            parent = self.store.get_message(message.parent_id)
            if parent.conversation_id != message.conversation_id:
                raise ValidationError(
                    f"message {message.parent_id} is not in conversation {message.conversation_id}"
                )
        payload = MessageAdded(message=message)
        stored = self.store.append(payload, event_id=message.id)
        assert isinstance(stored.payload, MessageAdded)
        return stored.payload.message

    def log_exchange(self, run: Run, conversation: Conversation | None) -> Run:
        """A run and, when given, the conversation it belongs to, in one transaction.

        The conversation is appended with its own id as event id, so naming it on
        every call of a chat starts it once and changes nothing afterwards.
        """
        events = self._exchange(run, conversation)
        self.store.append_many(events)
        return run

    async def log_exchange_async(self, run: Run, conversation: Conversation | None) -> Run:
        """:meth:`log_exchange` for a coroutine: no thread is held while it commits."""
        events = self._exchange(run, conversation)
        await self.store.append_many_async(events)
        return run

    @staticmethod
    def _exchange(run: Run, conversation: Conversation | None) -> list[NewEvent]:
        events = [NewEvent(run_event(run), run.id)]
        if conversation is not None:
            events.insert(
                0,
                NewEvent(
                    ConversationStarted(conversation=conversation), conversation.id, ensure=True
                ),
            )
        return events

    def end_conversation(self, conversation_id: str) -> Conversation:
        return end_conversation(self.store, conversation_id)
