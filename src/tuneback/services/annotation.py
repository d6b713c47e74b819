"""Annotation tasks: a prompt set answered by the server's models, then reviewed by people.

Prompts come from a CSV file (a ``prompt`` column, optionally ``system``) or JSON
Lines (``prompt`` or ``messages`` per line). Creating a task stores it and its
review queue in one transaction, then background work asks every model for
every prompt and records each answer as a run tagged with the task; the queue's
rule is that tag, so answers join the queue as they arrive and the page's
progress bar counts the runs' events.

Each answer's run id is derived from the task, the prompt and the model, so a
task interrupted by a restart can be resumed without answering anything twice.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import threading
from collections.abc import Sequence

from tuneback.domain import (
    AnnotationTask,
    AnnotationTaskCreated,
    ChatMessage,
    QueueRule,
    ReviewQueue,
    ReviewQueueCreated,
    new_id,
    task_tag,
    validate,
)
from tuneback.domain.common import MAX_JSON_DEPTH, json_depth_exceeds
from tuneback.errors import ModelError, TuneBackError, ValidationError
from tuneback.services.background import BackgroundWork, Job
from tuneback.services.calls import ModelCall
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
    """Creates annotation tasks and answers their prompts as background work.

    At shutdown a running task stops before its next answer; the answer in
    progress is dropped, not stored half-said, and is asked again when the
    task is started again.
    """

    def __init__(
        self,
        store: Store,
        models: ModelCatalog,
        reviews: ReviewService,
        *,
        background: BackgroundWork | None = None,
    ) -> None:
        self.store = store
        self.models = models
        self.reviews = reviews
        self.background = background or BackgroundWork()
        self._running: dict[str, _Answering] = {}
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
        return task_id in self._running_ids()

    def _running_ids(self) -> set[str]:
        with self._lock:
            return {
                task_id for task_id, answering in self._running.items() if answering.job.running
            }

    def status(self, task_id: str) -> tuple[TaskProgress, bool]:
        """The task's progress and whether it is still being answered.

        Whether it runs is asked first: a task seen stopped has stored every
        answer it will store, so the progress read after it is final. (Read the
        other way round, the last answer can land between the two reads, and a
        page would stop watching one answer short.)
        """
        running = self.running(task_id)
        return self.progress(task_id), running

    def statuses(self, project: str) -> list[tuple[TaskProgress, bool]]:
        """Every task of a project and whether it is being answered (asked first, as in
        :meth:`status`)."""
        running = self._running_ids()
        return [(task, task.id in running) for task in self.tasks(project)]

    def start(self, task_id: str) -> bool:
        """Answer the task's missing prompts in the background; False if already running."""
        task = self.reviews.reviews.get_task(task_id)
        with self._lock:
            answering = self._running.get(task.id)
            if answering is not None and answering.job.running:
                return False
            answering = _Answering(self, task)
            answering.job = self.background.start(
                answering.run, name=f"tuneback-task-{task.id}", cancel=answering.stop
            )
            self._running[task.id] = answering
        return True

    def wait(self, task_id: str, timeout: float | None = None) -> TaskProgress:
        """Block until the task's answering ends (tests and the CLI use it)."""
        with self._lock:
            answering = self._running.get(task_id)
        if answering is not None:
            answering.job.join(timeout)
        return self.progress(task_id)


class _Answering:
    """One task being answered, prompt by prompt, until done or stopped."""

    job: Job

    def __init__(self, service: AnnotationService, task: AnnotationTask) -> None:
        self.service = service
        self.task = task
        self._stopped = threading.Event()
        self._call: ModelCall | None = None

    def stop(self) -> None:
        self._stopped.set()
        call = self._call
        if call is not None:
            call.cancel()

    def run(self) -> None:
        task = self.task
        reviews = self.service.reviews.reviews
        try:
            done = {run.id for run in reviews.task_runs(task, task_tag(task.id))}
            for index, messages in enumerate(task.prompts):
                for model_index, spec in enumerate(task.models):
                    run_id = answer_id(task.id, index, model_index)
                    if run_id in done:
                        continue
                    if self._stopped.is_set():
                        return
                    self._answer(index, messages, spec, run_id)
        except TuneBackError as exc:
            log.error("annotation task %s stopped: %s", task.id, exc.message)

    def _answer(self, index: int, messages: list[ChatMessage], spec: str, run_id: str) -> None:
        task = self.task
        call = ModelCall(self.service.models.get(spec), messages, run_id=run_id)
        self._call = call
        if self._stopped.is_set():
            call.cancel()
        with contextlib.suppress(ModelError):  # a failed answer is a run with its error
            for _ in call:
                pass
        if call.status == "cancelled":
            return  # stopped by shutdown: answered again when the task resumes
        run = call.finish(
            project=task.project,
            name=task.name,
            user=task.created_by,
            tags=[task_tag(task.id)],
            metadata={"annotation_task": task.id, "prompt_index": index},
        )
        if run is not None:
            self.service.store.append(run_event(run), event_id=run.id)
