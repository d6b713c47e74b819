"""The export formats by name: what each row looks like and where its rows come from.

The rules that decide which runs become rows are in the docstrings of
:mod:`tuneback.export.supervised` (``sft``, ``openai-sft``, ``kto``),
:mod:`tuneback.export.preferences` (``dpo``, ``openai-preference``) and
:mod:`tuneback.export.flat` (``runs``, ``feedback``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from tuneback.errors import ValidationError
from tuneback.export.filters import ExportRules
from tuneback.export.flat import FEEDBACK_COLUMNS, RUN_COLUMNS, feedback_sources, runs_sources
from tuneback.export.preferences import preference_sources
from tuneback.export.rows import Source
from tuneback.export.supervised import kto_sources, sft_sources
from tuneback.storage import Store
from tuneback.storage.export_queries import RunSelection

SourcesOf = Callable[[Store, RunSelection, ExportRules], list[Source]]
Halves = Literal["runs", "groups"]


@dataclass(frozen=True)
class ExportFormat:
    """A format: its name, one line of help, its columns (name → kind) and its sources.

    Column kinds: ``string``, ``float``, ``int``, ``bool``, ``timestamp``,
    ``json`` (text), ``messages`` (a list of role/content messages) and
    ``input`` (OpenAI's ``{"messages": [...]}``).
    """

    name: str
    description: str
    columns: dict[str, str]
    sources: SourcesOf
    training: bool = True
    """Training formats are deduplicated and split by prompt; flat tables by id."""
    halves: Halves | None = None
    """How a big export is split in two: ``runs`` at a run id (every source reads runs
    in id order), ``groups`` at the key of a group of rated answers (that source only)."""


FORMATS: dict[str, ExportFormat] = {
    spec.name: spec
    for spec in (
        ExportFormat(
            "sft",
            "TRL conversational SFT: {messages}; good answers and corrections",
            {"messages": "messages"},
            sft_sources,
            halves="runs",
        ),
        ExportFormat(
            "dpo",
            "TRL conversational DPO: {prompt, chosen, rejected}",
            {"prompt": "messages", "chosen": "messages", "rejected": "messages"},
            preference_sources,
            halves="groups",
        ),
        ExportFormat(
            "kto",
            "TRL conversational KTO: {prompt, completion, label}",
            {"prompt": "messages", "completion": "messages", "label": "bool"},
            kto_sources,
            halves="runs",
        ),
        ExportFormat(
            "openai-sft",
            "OpenAI supervised fine-tuning JSONL: {messages}",
            {"messages": "messages"},
            partial(sft_sources, openai=True),
            halves="runs",
        ),
        ExportFormat(
            "openai-preference",
            "OpenAI preference (DPO) fine-tuning: {input, preferred_output, non_preferred_output}",
            {"input": "input", "preferred_output": "messages", "non_preferred_output": "messages"},
            partial(preference_sources, openai=True),
            halves="groups",
        ),
        ExportFormat(
            "runs",
            "every selected run as a flat table, with its score and feedback",
            RUN_COLUMNS,
            runs_sources,
            training=False,
            halves="runs",
        ),
        ExportFormat(
            "feedback",
            "every feedback row as a flat table, with the rated run's model",
            FEEDBACK_COLUMNS,
            feedback_sources,
            training=False,
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValidationError(
            f"unknown export format {name!r}: choose one of {', '.join(FORMATS)}"
        ) from None
