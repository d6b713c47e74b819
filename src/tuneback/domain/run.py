"""Runs: one generation (or one step of a traced chain) with everything needed to learn from it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from tuneback.domain.common import (
    DomainModel,
    Identifier,
    JsonObject,
    Metadata,
    ProjectName,
    UtcDatetime,
    new_id,
    utcnow,
)
from tuneback.domain.conversation import ChatMessage

RunType = Literal["llm", "chain", "tool", "retriever"]
RunStatus = Literal["ok", "error", "cancelled"]

TOKEN_COUNT_MAX = 2**31 - 1
"""The most tokens one side of a run may count: the columns are 32-bit on both databases, and a
larger count is a mistake in the caller, refused before it is acknowledged rather than at commit."""


class Run(DomainModel):
    """An assistant generation, or a step of a chain (``parent_run_id`` builds the tree).

    Runs logged from outside need no conversation; ``inputs`` are the exact
    messages sent to the model (or, for chain/tool steps, their input mapping).
    """

    id: Identifier = Field(default_factory=new_id)
    project: ProjectName = "default"
    run_type: RunType = "llm"
    name: str | None = None
    parent_run_id: Identifier | None = None
    conversation_id: Identifier | None = None
    message_id: Identifier | None = None
    user: str | None = None
    model: str | None = None
    params: JsonObject = Field(default_factory=dict)
    inputs: list[ChatMessage] | JsonObject = Field(default_factory=list)
    output: str | None = None
    status: RunStatus = "ok"
    error: str | None = None
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    ttft_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    prompt_tokens: int | None = Field(default=None, ge=0, le=TOKEN_COUNT_MAX)
    completion_tokens: int | None = Field(default=None, ge=0, le=TOKEN_COUNT_MAX)
    tags: list[str] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    started_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _error_needs_text(self) -> Run:
        if self.status == "error" and not self.error:
            raise ValueError("a run with status 'error' needs an error message")
        return self

    @property
    def happened_at(self) -> datetime:
        """When the run happened: its start when known, else when it was recorded."""
        return self.started_at or self.created_at

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)
