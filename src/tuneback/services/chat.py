"""The chat engine: conversations with branches, streamed replies, every run recorded.

A reply is generated as a stream of text chunks while a :class:`Run` is timed;
when the stream ends — finished, failed or cancelled — the run and the assistant
message are appended in one transaction. The user's message is stored before the
model is called, so a failing model never loses what the user wrote.

Conversations are trees: regenerating an answer adds a sibling under the same
user message, and editing a user message adds a sibling of it, so nothing is
overwritten and every branch can be rated and exported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuneback.domain import (
    ChatMessage,
    Conversation,
    ConversationDeleted,
    ConversationRenamed,
    ConversationStarted,
    EventPayload,
    Feedback,
    FeedbackRecorded,
    Message,
    MessageAdded,
    Run,
    new_id,
)
from tuneback.errors import ValidationError
from tuneback.models import ModelAdapter, ModelOptions, parse_options
from tuneback.models.base import MESSAGE_OVERHEAD_TOKENS
from tuneback.services.background import BackgroundWork
from tuneback.services.calls import ModelCall
from tuneback.services.catalog import ModelCatalog
from tuneback.services.runs import end_conversation, run_event
from tuneback.storage import Store

DEFAULT_REPLY_BUDGET = 512
"""Tokens kept free for the answer when a request sets no max_tokens."""


def fit_history(
    adapter: ModelAdapter,
    system_prompt: str | None,
    turns: Sequence[ChatMessage],
    reply_budget: int,
) -> list[ChatMessage]:
    """The messages to send: the system prompt and as many of the newest turns as fit.

    The newest turn is always sent, even alone past the budget: the backend then
    says "context too long" instead of the model silently answering nothing.
    """
    budget = adapter.context_window - reply_budget
    system = [ChatMessage(role="system", content=system_prompt)] if system_prompt else []
    used = sum(adapter.count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in system)
    kept: list[ChatMessage] = []
    for message in reversed(turns):
        cost = adapter.count_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS
        if kept and used + cost > budget:
            break
        kept.append(message)
        used += cost
    return system + kept[::-1]


@dataclass
class Reply:
    """An answer being generated. Iterate it for text chunks.

    ``run_id`` and ``message_id`` are known from the start, so a client can show
    the run link and a stop button before the first token. When iteration ends,
    ``run`` and ``message`` hold what was stored; a model failure is recorded and
    then raised as :class:`ModelError`. :meth:`cancel` (from any thread) stops the
    generation and stores the partial answer as a cancelled run.
    """

    conversation: Conversation
    parent: Message
    call: ModelCall
    background: BackgroundWork
    """Where work that outlives a request (stopping an abandoned reply) runs."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Kept in the run's metadata (a battle notes its round and side here)."""
    message_id: str = field(default_factory=new_id)
    run: Run | None = None
    message: Message | None = None
    _stream: Iterator[str] | None = None

    @property
    def run_id(self) -> str:
        return self.call.run_id

    @property
    def adapter(self) -> ModelAdapter:
        return self.call.adapter

    @property
    def options(self) -> ModelOptions:
        return self.call.options

    @property
    def inputs(self) -> list[ChatMessage]:
        return self.call.inputs

    @property
    def partial(self) -> str:
        """What the model has said so far (readable from any thread)."""
        return self.call.text

    def cancel(self) -> None:
        self.call.cancel()

    @property
    def cancelled(self) -> bool:
        return self.call.cancelled

    def __iter__(self) -> Iterator[str]:
        if self._stream is None:
            raise RuntimeError("a reply is made by ChatService, not directly")
        return self._stream


class ChatService:
    """Conversations and replies, stored as events in ``store``."""

    def __init__(
        self, store: Store, models: ModelCatalog, *, background: BackgroundWork | None = None
    ) -> None:
        self.store = store
        self.models = models
        self.background = background or BackgroundWork()
        self._live: dict[str, Reply] = {}
        self._live_lock = threading.Lock()

    # -- conversations -------------------------------------------------------------

    def start_conversation(
        self,
        *,
        project: str = "default",
        user: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        title: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Conversation:
        adapter = self.models.get(model)
        conversation = Conversation(
            project=project,
            user=user,
            model=adapter.spec,
            system_prompt=system_prompt or None,
            title=title,
            tags=list(tags),
            metadata=dict(metadata or {}),
        )
        self.store.append(ConversationStarted(conversation=conversation))
        return conversation

    def end_conversation(self, conversation_id: str) -> Conversation:
        return end_conversation(self.store, conversation_id)

    def rename_conversation(self, conversation_id: str, title: str) -> Conversation:
        """Give a conversation a title of its own (what lists show instead of its first line)."""
        title = " ".join(title.split())
        if not title:
            raise ValidationError("a title needs some text")
        if len(title) > 200:
            raise ValidationError("a title is at most 200 characters")
        conversation = self.store.get_conversation(conversation_id)
        self.store.append(
            ConversationRenamed(
                project=conversation.project, conversation_id=conversation.id, title=title
            )
        )
        return self.store.get_conversation(conversation_id)

    def delete_conversation(self, conversation_id: str) -> Conversation:
        """Take a conversation out of its owner's chat; its events, runs and feedback stay."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation.deleted_at is None:
            self.store.append(
                ConversationDeleted(project=conversation.project, conversation_id=conversation.id)
            )
        return self.store.get_conversation(conversation_id)

    def current_path(
        self,
        conversation_id: str,
        leaf_id: str | None = None,
        *,
        through: str | None = None,
    ) -> list[Message]:
        """The messages from the first to ``leaf_id`` (default: the newest message).

        With ``through``, the branch that holds that message, followed down to
        its newest reply: what picking one version of a message shows.
        """
        messages = self.store.conversation_messages(conversation_id)
        if not messages:
            return []
        by_id = {m.id: m for m in messages}
        if through is not None:
            if through not in by_id:
                raise ValidationError(f"message {through} is not in conversation {conversation_id}")
            leaf_id = _newest_below(messages, through)
        leaf = by_id.get(leaf_id) if leaf_id else messages[-1]
        if leaf is None:
            raise ValidationError(f"message {leaf_id} is not in conversation {conversation_id}")
        path = [leaf]
        while path[-1].parent_id is not None:
            path.append(by_id[path[-1].parent_id])
        return path[::-1]

    def answering(self, user_message_id: str) -> Reply | None:
        """The reply this process is still streaming for a user message, if any."""
        with self._live_lock:
            live = [r for r in self._live.values() if r.parent.id == user_message_id]
        return live[-1] if live else None

    # -- messages and replies ------------------------------------------------------

    def add_user_message(
        self, conversation_id: str, content: str, *, parent_id: str | None = None
    ) -> Message:
        """Store what the user wrote, after ``parent_id`` (default: the newest message)."""
        if parent_id is None:
            path = self.current_path(conversation_id)
            parent_id = path[-1].id if path else None
        elif self.store.get_message(parent_id).conversation_id != conversation_id:
            raise ValidationError(f"message {parent_id} is not in conversation {conversation_id}")
        return self._append_user_message(conversation_id, parent_id, content)

    def edit_user_message(self, message_id: str, content: str) -> Message:
        """A new version of a user message: a sibling under the same parent, a new branch."""
        original = self.store.get_message(message_id)
        if original.role != "user":
            raise ValidationError("only user messages can be edited; regenerate an answer instead")
        return self._append_user_message(original.conversation_id, original.parent_id, content)

    def _append_user_message(
        self, conversation_id: str, parent_id: str | None, content: str
    ) -> Message:
        if not content.strip():
            raise ValidationError("a message needs some text")
        conversation = self.store.get_conversation(conversation_id)
        if conversation.ended_at is not None:
            raise ValidationError(
                "this conversation has ended; start a new one to keep chatting",
                details={"conversation_id": conversation_id},
            )
        message = Message(
            conversation_id=conversation_id,
            project=conversation.project,
            parent_id=parent_id,
            role="user",
            content=content,
        )
        self.store.append(MessageAdded(message=message))
        return message

    def reply(
        self,
        user_message_id: str,
        *,
        model: str | None = None,
        options: ModelOptions | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Reply:
        """Start answering a user message; iterate the returned :class:`Reply` for text."""
        parent = self.store.get_message(user_message_id)
        if parent.role != "user":
            raise ValidationError("replies answer a user message")
        conversation = self.store.get_conversation(parent.conversation_id)
        adapter = self.models.get(model or conversation.model)
        parsed = parse_options(options)
        turns = [
            m.as_chat()
            for m in self.current_path(conversation.id, parent.id)
            if m.role in ("user", "assistant")
        ]
        inputs = fit_history(
            adapter,
            conversation.system_prompt,
            turns,
            reply_budget=parsed.max_tokens or DEFAULT_REPLY_BUDGET,
        )
        reply = Reply(
            conversation=conversation,
            parent=parent,
            call=ModelCall(adapter, inputs, parsed),
            background=self.background,
            metadata=dict(metadata or {}),
        )
        reply._stream = self._generate(reply)
        with self._live_lock:
            self._live[reply.run_id] = reply
        return reply

    def regenerate(
        self,
        assistant_message_id: str,
        *,
        model: str | None = None,
        options: ModelOptions | Mapping[str, Any] | None = None,
    ) -> Reply:
        """Answer the same question again; the earlier answer gets implicit feedback."""
        earlier = self.store.get_message(assistant_message_id)
        if earlier.role != "assistant" or earlier.parent_id is None:
            raise ValidationError("only an assistant answer can be regenerated")
        reply = self.reply(earlier.parent_id, model=model, options=options)
        if earlier.run_id is not None:
            self.store.append(
                FeedbackRecorded(
                    feedback=Feedback(
                        project=earlier.project,
                        run_id=earlier.run_id,
                        key="regenerated",
                        kind="implicit",
                        user=reply.conversation.user,
                        source="end_user",
                        metadata={"new_run_id": reply.run_id},
                    )
                )
            )
        return reply

    def cancel(self, run_id: str, *, user: str | None = None) -> bool:
        """Stop a reply that is still streaming; False when none is.

        With ``user``, only a reply in that user's conversation: nobody stops another's.
        """
        with self._live_lock:
            reply = self._live.get(run_id)
        if reply is None or (user is not None and reply.conversation.user != user):
            return False
        reply.cancel()
        return True

    def _generate(self, reply: Reply) -> Iterator[str]:
        call = reply.call
        # Held as background work from the first chunk asked for until the run is
        # stored: shutdown stops the answer and waits for it to be recorded.
        with self.background.holding(f"tuneback-reply-{reply.run_id}", cancel=call.cancel):
            try:
                # A consumer that goes away (a closed page, the stop button) closes
                # this generator: the call then ends as cancelled, keeping what was said.
                yield from call
            finally:
                call.close()
                # Listed as answering until its run and message are stored: a page
                # that looks in between sees the answer so far, never nothing.
                try:
                    self._record(reply)
                finally:
                    with self._live_lock:
                        self._live.pop(reply.run_id, None)

    def _record(self, reply: Reply) -> None:
        conversation = reply.conversation
        call = reply.call
        output = call.text
        run = call.finish(
            project=conversation.project,
            conversation_id=conversation.id,
            message_id=reply.message_id if output else None,
            user=conversation.user,
            metadata={
                **reply.metadata,
                # With nothing said there is no message: the run names the
                # question it failed to answer, so the chat can offer a retry.
                **({} if output else {"reply_to": reply.parent.id}),
            },
        )
        if run is None:
            return
        events: list[EventPayload] = [run_event(run)]
        if output:
            reply.message = Message(
                id=reply.message_id,
                conversation_id=conversation.id,
                project=conversation.project,
                parent_id=reply.parent.id,
                role="assistant",
                content=output,
                run_id=run.id,
            )
            events.append(MessageAdded(message=reply.message))
        self.store.append_many(events)
        reply.run = run


def _newest_below(messages: Sequence[Message], top: str) -> str:
    """The newest message in ``top``'s subtree (``messages`` oldest first)."""
    parent_of = {m.id: m.parent_id for m in messages}
    for message in reversed(messages):
        node: str | None = message.id
        while node is not None:
            if node == top:
                return message.id
            node = parent_of.get(node)
    return top
