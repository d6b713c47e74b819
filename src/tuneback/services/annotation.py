"""Annotation tasks: a prompt set answered by the server's models, then reviewed by people.

Prompts come from a CSV file (a ``prompt`` column, optionally ``system``) or JSON
Lines (``prompt`` or ``messages`` per line). Creating a task stores it and its
review queue in one transaction, then a background thread asks every model for
every prompt and records each answer as a run tagged with the task; the queue's
rule is that tag, so answers join the queue as they arrive and the page's
progress bar counts the runs' events.

Each answer's run id is derived from the task, the prompt and the model, so a
task interrupted by a restart can be resumed without answering anything twice.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from tuneback.domain import (
    AnnotationTask,
    AnnotationTaskCreated,
    ChatMessage,
    QueueRule,
    ReviewQueue,
    ReviewQueueCreated,
    Run,
    RunStatus,
    new_id,
    task_tag,
    utcnow,
    validate,
)
from tuneback.domain.common import MAX_JSON_DEPTH, json_depth_exceeds
from tuneback.errors import ModelError, TuneBackError, ValidationError
from tuneback.models import ModelOptions, Usage
from tuneback.services.catalog import ModelCatalog
from tuneback.services.review import ReviewService
from tuneback.services.runs import run_event
from tuneback.storage import NewEvent, Store
from tuneback.storage.review import TaskProgress

log = logging.getLogger("tuneback.annotation")

MAX_PROMPTS = 10_000


def _bad(line: int, message: str) -> ValidationError:
    return ValidationError(f"line {line}: {message}", details={"line": line})


def _csv_problem(exc: csv.Error) -> str:
    limit = csv.field_size_limit()
    if "field limit" in str(exc):
        return f"a field is longer than {limit // 1024} KiB ({limit:,} characters)"
    return str(exc)


def _from_csv(text: str) -> list[list[ChatMessage]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise _bad(reader.line_num + 1, f"not valid CSV: {_csv_problem(exc)}") from None
    columns = [c.strip().lower() for c in fieldnames or []]
    if "prompt" not in columns:
        raise ValidationError(
            "the CSV file needs a header row with a 'prompt' column (and optionally 'system')",
            details={"columns": columns},
        )
    reader.fieldnames = columns
    prompts = []
    try:
        rows = list(reader)
    except csv.Error as exc:
        # Python's csv refuses fields over its limit (128 KiB) and stray quotes;
        # either way the file is the problem, so say where.
        raise _bad(reader.line_num + 1, f"not valid CSV: {_csv_problem(exc)}") from None
    for row in rows:
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            continue
        system = (row.get("system") or "").strip()
        messages = [ChatMessage(role="system", content=system)] if system else []
        prompts.append([*messages, ChatMessage(role="user", content=prompt)])
    return prompts


_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def _from_jsonl(text: str) -> list[list[ChatMessage]]:
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(number, f"not JSON ({exc.msg})") from None
        except ValueError as exc:  # an integer of thousands of digits
            raise _bad(number, f"not JSON ({exc})") from None
        except RecursionError:
            raise _bad(number, _TOO_DEEP) from None
        if json_depth_exceeds(data):
            raise _bad(number, _TOO_DEEP)
        if not isinstance(data, dict):
            raise _bad(number, "each line must be an object with 'prompt' or 'messages'")
        if isinstance(data.get("messages"), list):
            try:
                messages = [validate(ChatMessage, m, what="message") for m in data["messages"]]
            except ValidationError as exc:
                raise _bad(number, exc.message) from None
            if not messages or messages[-1].role != "user":
                raise _bad(number, "'messages' must end with a user message")
            prompts.append(messages)
        elif isinstance(data.get("prompt"), str) and data["prompt"].strip():
            system = data.get("system")
            first = [ChatMessage(role="system", content=system)] if isinstance(system, str) else []
            prompts.append([*first, ChatMessage(role="user", content=data["prompt"].strip())])
        else:
            raise _bad(number, "each line needs a 'prompt' string or a 'messages' list")
    return prompts


def parse_prompts(filename: str, text: str) -> list[list[ChatMessage]]:
    """The prompts in an uploaded file, each as the messages to send.

    ``.csv`` files are read as CSV and ``.jsonl``/``.json`` as JSON Lines; any
    other name is read as JSON Lines when its first line looks like JSON.
    """
    name = filename.lower()
    first = next((line for line in text.splitlines() if line.strip()), "")
    as_json = name.endswith((".jsonl", ".json", ".ndjson")) or (
        not name.endswith(".csv") and first.lstrip().startswith("{")
    )
    prompts = _from_jsonl(text) if as_json else _from_csv(text)
    if not prompts:
        raise ValidationError(f"{filename or 'the file'} has no prompts")
    if len(prompts) > MAX_PROMPTS:
        raise ValidationError(f"a task takes at most {MAX_PROMPTS:,} prompts; split the file")
    return prompts


def answer_id(task_id: str, prompt_index: int, model_index: int) -> str:
    return f"{task_id}-{prompt_index}-{model_index}"


class AnnotationService:
    """Creates annotation tasks and answers their prompts in background threads."""

    def __init__(self, store: Store, models: ModelCatalog, reviews: ReviewService) -> None:
        self.store = store
        self.models = models
        self.reviews = reviews
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def create(
        self,
        *,
        project: str,
        name: str,
        prompts: Sequence[Sequence[ChatMessage]],
        models: Sequence[str] = (),
        keys: Sequence[str] = ("thumbs", "comment", "correction"),
        reviewers_per_item: int = 1,
        created_by: str | None = None,
        start: bool = True,
    ) -> AnnotationTask:
        """Store the task and its review queue, then start answering (unless ``start=False``)."""
        specs = [self.models.get(spec).spec for spec in dict.fromkeys(models)] or [
            self.models.default.spec
        ]
        task_id = new_id()
        queue = validate(
            ReviewQueue,
            {
                "project": project,
                "name": name,
                "description": f"Answers to the {len(prompts)} prompts of annotation task {name}",
                "rule": QueueRule(tag=task_tag(task_id)),
                "keys": list(keys),
                "reviewers_per_item": reviewers_per_item,
                "created_by": created_by,
            },
            what="review queue",
        )
        task = validate(
            AnnotationTask,
            {
                "id": task_id,
                "project": project,
                "name": name,
                "models": specs,
                "prompts": [list(p) for p in prompts],
                "queue_id": queue.id,
                "created_by": created_by,
            },
            what="annotation task",
        )
        self.store.append_many(
            [
                NewEvent(ReviewQueueCreated(queue=queue), queue.id),
                NewEvent(AnnotationTaskCreated(task=task), task.id),
            ]
        )
        if start:
            self.start(task.id)
        return task

    def progress(self, task_id: str) -> TaskProgress:
        return self.reviews.reviews.task_progress(task_id)

    def tasks(self, project: str) -> list[TaskProgress]:
        return self.reviews.reviews.list_tasks(project)

    def running(self, task_id: str) -> bool:
        with self._lock:
            thread = self._threads.get(task_id)
            return thread is not None and thread.is_alive()

    def start(self, task_id: str) -> bool:
        """Answer the task's missing prompts in a background thread; False if already running."""
        task = self.reviews.reviews.get_task(task_id)
        with self._lock:
            thread = self._threads.get(task.id)
            if thread is not None and thread.is_alive():
                return False
            thread = threading.Thread(
                target=self._answer_all, args=(task,), name=f"tuneback-task-{task.id}", daemon=True
            )
            self._threads[task.id] = thread
            thread.start()
        return True

    def wait(self, task_id: str, timeout: float | None = None) -> TaskProgress:
        """Block until the task's thread ends (tests and the CLI use it)."""
        with self._lock:
            thread = self._threads.get(task_id)
        if thread is not None:
            thread.join(timeout)
        return self.progress(task_id)

    def _answer_all(self, task: AnnotationTask) -> None:
        tag = task_tag(task.id)
        try:
            done = {run.id for run in self.reviews.reviews.task_runs(task, tag)}
            for index, messages in enumerate(task.prompts):
                for model_index, spec in enumerate(task.models):
                    run_id = answer_id(task.id, index, model_index)
                    if run_id not in done:
                        self._answer(task, index, messages, spec, run_id)
        except TuneBackError as exc:
            log.error("annotation task %s stopped: %s", task.id, exc.message)
        except Exception:
            log.exception("annotation task %s stopped", task.id)

    def _answer(
        self,
        task: AnnotationTask,
        index: int,
        messages: list[ChatMessage],
        spec: str,
        run_id: str,
    ) -> None:
        started_at = utcnow()
        began = time.perf_counter()
        first_token: float | None = None
        pieces: list[str] = []
        usage: Usage | None = None
        status: RunStatus = "ok"
        error: str | None = None
        try:
            for item in self.models.get(spec).stream(messages, ModelOptions()):
                if isinstance(item, Usage):
                    usage = item
                    continue
                if first_token is None:
                    first_token = time.perf_counter()
                pieces.append(item)
        except ModelError as exc:
            status, error = "error", exc.message
        extra: dict[str, Any] = {}
        if usage is not None:
            extra = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            }
        run = Run(
            id=run_id,
            project=task.project,
            name=task.name,
            user=task.created_by,
            model=spec,
            inputs=messages,
            output="".join(pieces) or None,
            status=status,
            error=error,
            latency_ms=(time.perf_counter() - began) * 1000,
            ttft_ms=None if first_token is None else (first_token - began) * 1000,
            tags=[task_tag(task.id)],
            metadata={"annotation_task": task.id, "prompt_index": index},
            started_at=started_at,
            **extra,
        )
        self.store.append(run_event(run), event_id=run.id)
