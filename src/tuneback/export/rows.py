"""The pieces every format is made of: rows, skips with a reason, and sources of records.

A *source* is one stream read from the store (runs, comparisons, corrections…);
each record it yields becomes a list of outcomes: rows to write, or skips that
say why a row was not written. The exporter counts the skips by reason for the
summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from tuneback.storage.export_queries import ScoredRun

Message = dict[str, Any]

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool"})
OPENAI_ROLES = frozenset({"system", "user", "assistant"})


class Row(NamedTuple):
    """A row to write; ``prompt`` is what decides its train/test split and dedup group.

    Rows and skips are named tuples: one is made for every record exported.
    """

    data: dict[str, Any]
    prompt: Any


class Skip(NamedTuple):
    reason: str


Outcome = Row | Skip

Records = tuple[int, list[Outcome]]
"""How many records were read (what the progress bar counts) and what they gave."""


@dataclass(frozen=True)
class Source:
    """One stream of records: a label for the progress bar, its size, and its outcomes."""

    description: str
    count: Callable[[], int]
    records: Callable[[], Iterator[Records]]
    halves: bool = False
    """Its selection's split range narrows it: a big export can read it in two halves."""


# Skip reasons, shared so the summary adds up the same cause from every source.
NOT_COMPLETED = "run did not complete (error or cancelled)"
NOT_CHAT = "inputs are not chat messages"
EMPTY_OUTPUT = "empty output"
NOT_RATED = "not rated"
TOOL_MESSAGES = "has tool messages (OpenAI fine-tuning needs tool_call_id, not recorded)"
DUPLICATE = "duplicate row"


def chat_prompt(run: ScoredRun, roles: frozenset[str] = CHAT_ROLES) -> list[Message] | Skip:
    """The run's inputs as a chat prompt, or why they cannot be one."""
    if run.status != "ok":
        return Skip(NOT_COMPLETED)
    inputs = run.inputs
    if not isinstance(inputs, list) or not inputs:
        return Skip(NOT_CHAT)
    for message in inputs:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return Skip(NOT_CHAT)
        role = message.get("role")
        if role not in roles:
            return Skip(TOOL_MESSAGES if role == "tool" else NOT_CHAT)
    return inputs


def assistant(text: str) -> list[Message]:
    """A completion in TRL's and OpenAI's conversational form: one assistant message."""
    return [{"role": "assistant", "content": text}]
