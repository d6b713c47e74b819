"""Completions asked for through the OpenAI-compatible proxy, recorded as runs.

The HTTP side (``tuneback.server.proxy``) speaks OpenAI's wire format; this
module decides what a call is in tuneback's terms: which conversation it
belongs to, and what its run records besides what every model call records
(see :class:`~tuneback.services.calls.ModelCall`): the parameters as asked,
whether it streamed, the knobs it sent that were not used, and whether the
default model stood in for the one it named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from tuneback.domain import ChatMessage, Conversation, Run
from tuneback.errors import ValidationError
from tuneback.services.calls import ModelCall
from tuneback.services.runs import RunService


def conversation_for(
    *,
    named: str | None,
    user: str | None,
    inputs: Sequence[ChatMessage],
    project: str,
    model: str,
) -> Conversation | None:
    """The conversation a call belongs to: ``named`` by the client, or derived from the user.

    Without a name, calls by the same ``user`` that open with the same system
    prompt and first question are one conversation: each turn of a chat resends
    that opening, so its turns land together. A call with neither belongs to none.
    """
    first_user = next((m.content for m in inputs if m.role == "user"), "")
    system = next((m.content for m in inputs if m.role == "system"), None)
    if named:
        conversation_id = named
    elif user:
        opening = json.dumps([project, user, system, first_user])
        conversation_id = "oa-" + hashlib.sha256(opening.encode()).hexdigest()[:32]
    else:
        return None
    try:
        return Conversation(
            id=conversation_id,
            project=project,
            user=user,
            model=model,
            system_prompt=system,
            title=" ".join(first_user.split())[:200] or None,
            metadata={"source": "proxy"},
        )
    except PydanticValidationError:
        raise ValidationError(
            "a conversation id is 1-64 letters, digits or . _ : -",
            details={"conversation_id": conversation_id},
        ) from None


class ProxiedCompletion:
    """One proxied call: the model call, and the run it becomes (recorded once)."""

    def __init__(
        self,
        call: ModelCall,
        *,
        project: str,
        user: str | None,
        conversation: Conversation | None,
        requested_model: str | None,
        streamed: bool,
        ignored_params: Sequence[str] = (),
        default_model: bool = False,
    ) -> None:
        self.call = call
        self.project = project
        self.user = user
        self.conversation = conversation
        self.requested_model = requested_model
        self.streamed = streamed
        self.ignored_params = sorted(ignored_params)
        self.default_model = default_model

    def finish(self) -> Run | None:
        """The run, the first time it is asked for; None after that."""
        metadata: dict[str, Any] = {"source": "proxy", "stream": self.streamed}
        if self.ignored_params:
            metadata["ignored_params"] = self.ignored_params
        if self.default_model:
            # --any-model: the request named no model, or one not offered here.
            metadata["default_model"] = True
        params = self.call.options.as_kwargs()
        params["requested_model"] = self.requested_model
        conversation = self.conversation
        return self.call.finish(
            project=conversation.project if conversation else self.project,
            conversation_id=conversation.id if conversation else None,
            user=self.user,
            params=params,
            metadata=metadata,
        )

    def record(self, runs: RunService) -> None:
        """Store the run (and its conversation, the first time); once per call."""
        run = self.finish()
        if run is not None:
            runs.log_exchange(run, self.conversation)

    async def record_async(self, runs: RunService) -> None:
        """:meth:`record` awaiting the commit without holding a thread."""
        run = self.finish()
        if run is not None:
            await runs.log_exchange_async(run, self.conversation)
