"""Projects, conversations and the messages in them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneback.domain.access import ChatAccess
from tuneback.domain.common import (
    DomainModel,
    Identifier,
    Metadata,
    ProjectName,
    UtcDatetime,
    new_id,
    utcnow,
)

Role = Literal["system", "user", "assistant", "tool"]


class ChatMessage(DomainModel):
    """One message as a model sees it: what adapters take and runs record as inputs."""

    role: Role
    content: str


FeedbackWidget = Literal["thumbs", "faces", "stars", "comment", "correction"]

DEFAULT_WIDGETS: tuple[FeedbackWidget, ...] = ("thumbs", "comment", "correction")

DEFAULT_REASONS = [
    "not factually correct",
    "didn't follow instructions",
    "too verbose",
    "unsafe or offensive",
]


class ProjectSettings(DomainModel):
    """How a project collects feedback: which widgets, which reasons, which policy."""

    feedback: list[FeedbackWidget] = Field(default_factory=lambda: list(DEFAULT_WIDGETS))
    negative_reasons: list[str] = Field(default_factory=lambda: list(DEFAULT_REASONS))
    positive_reasons: list[str] = Field(default_factory=list)
    changeable: bool = True
    """False locks a rating once given; True lets a new rating supersede it."""
    latest_only: bool = False
    """True allows rating only the newest answer of a conversation."""
    chat_access: ChatAccess = "open"
    """Who may use the chat: anyone (each browser its own identity), invited browsers
    (an owner's link), or signed-in accounts only."""


class Project(DomainModel):
    """A workspace: every conversation, run and piece of feedback belongs to one."""

    name: ProjectName
    settings: ProjectSettings = Field(default_factory=ProjectSettings)
    created_at: UtcDatetime = Field(default_factory=utcnow)


class Conversation(DomainModel):
    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    user: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    title: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    started_at: UtcDatetime = Field(default_factory=utcnow)
    ended_at: UtcDatetime | None = None
    deleted_at: UtcDatetime | None = None
    """When its owner deleted it from the chat; the data itself stays."""


class Message(DomainModel):
    """A message in a conversation.

    ``parent_id`` makes conversations trees: regenerating an answer or editing a
    question adds a sibling under the same parent instead of overwriting.
    """

    id: Identifier = Field(default_factory=new_id)
    conversation_id: Identifier
    project: ProjectName = "default"
    parent_id: Identifier | None = None
    role: Role
    content: str
    run_id: Identifier | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)

    def as_chat(self) -> ChatMessage:
        return ChatMessage(role=self.role, content=self.content)
