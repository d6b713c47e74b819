"""``runs`` and ``feedback``: flat tables for analysis, complete rather than curated.

Nothing is judged here: every selected run (or feedback row) is written,
including zero scores, failed runs, comments and corrections. Nested values
(inputs, params, tags, metadata, a run's feedback list, raw feedback values)
are JSON text so every writer gets the same flat columns.

``runs`` — one row per run, with ``score`` (mean of current scores, as the
filters define it), ``feedback_count`` and ``feedback`` (its current feedback,
or all of it with ``--history``, oldest first).

``feedback`` — one row per feedback (current only, or with superseded and
retracted rows with ``--history``), with the rated run's model and status.
Here ``since``/``until``, ``key`` and ``min/max score`` apply to the feedback itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from tuneback.domain.json_encoding import json_text
from tuneback.export.filters import ExportRules
from tuneback.export.rows import Records, Row, Source
from tuneback.storage import Store
from tuneback.storage.export_queries import (
    RunSelection,
    count_feedback,
    count_runs,
    iter_feedback_table,
    iter_run_table,
)

# Column name → kind, which the Parquet writer turns into a type.
RUN_COLUMNS: dict[str, str] = {
    "id": "string",
    "project": "string",
    "run_type": "string",
    "name": "string",
    "parent_run_id": "string",
    "conversation_id": "string",
    "message_id": "string",
    "user": "string",
    "model": "string",
    "status": "string",
    "error": "string",
    "inputs": "json",
    "output": "string",
    "params": "json",
    "latency_ms": "float",
    "ttft_ms": "float",
    "prompt_tokens": "int",
    "completion_tokens": "int",
    "tags": "json",
    "metadata": "json",
    "started_at": "timestamp",
    "created_at": "timestamp",
    "score": "float",
    "feedback_count": "int",
    "feedback": "json",
}

FEEDBACK_COLUMNS: dict[str, str] = {
    "id": "string",
    "project": "string",
    "run_id": "string",
    "conversation_id": "string",
    "key": "string",
    "kind": "string",
    "score": "float",
    "value": "json",
    "comment": "string",
    "correction": "string",
    "user": "string",
    "source": "string",
    "metadata": "json",
    "created_at": "timestamp",
    "superseded_by": "string",
    "retracted_at": "timestamp",
    "current": "bool",
    "model": "string",
    "run_status": "string",
}


def run_row(run: dict[str, Any], feedback: list[dict[str, Any]]) -> Row:
    row = {name: run.get(name) for name in RUN_COLUMNS}
    for name, kind in RUN_COLUMNS.items():
        if kind == "json" and name != "feedback":
            row[name] = json_text(row[name])
    row["feedback_count"] = len(feedback)
    row["feedback"] = json_text(feedback)
    return Row(row, run["id"])


def feedback_row(feedback: dict[str, Any]) -> Row:
    row = {name: feedback.get(name) for name in FEEDBACK_COLUMNS}
    row["value"] = None if feedback["value"] is None else json_text(feedback["value"])
    row["metadata"] = json_text(feedback["metadata"])
    row["conversation_id"] = feedback["conversation_id"] or feedback["run_conversation_id"]
    row["model"] = feedback["run_model"]
    return Row(row, feedback["id"])


def _runs(store: Store, selection: RunSelection, history: bool) -> Iterator[Records]:
    for run, feedback in iter_run_table(store, selection, history=history):
        yield 1, [run_row(run, feedback)]


def _feedback(store: Store, selection: RunSelection, history: bool) -> Iterator[Records]:
    for feedback in iter_feedback_table(store, selection, history=history):
        yield 1, [feedback_row(feedback)]


def runs_sources(store: Store, selection: RunSelection, rules: ExportRules) -> list[Source]:
    return [
        Source(
            "runs",
            partial(count_runs, store, selection),
            partial(_runs, store, selection, rules.history),
            halves=True,
        )
    ]


def feedback_sources(store: Store, selection: RunSelection, rules: ExportRules) -> list[Source]:
    return [
        Source(
            "feedback",
            partial(count_feedback, store, selection, history=rules.history),
            partial(_feedback, store, selection, rules.history),
        )
    ]
