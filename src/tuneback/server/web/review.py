"""Review pages: the queues, one queue's progress and agreement, and the page reviewers work on.

The pages are server-rendered; their script calls the ``/ui/review/...``
endpoints here. Who is reviewing comes from ``?user=`` or the name cookie, as on
the chat page. Opening the work page reserves its item for that reviewer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from tuneback.domain import (
    BUILTIN_CONFIGS,
    CategoricalConfig,
    ContinuousConfig,
    FeedbackRecord,
    ReviewQueue,
    describe_value,
    utcnow,
)
from tuneback.domain.common import JsonObject
from tuneback.domain.feedback import FACES, RawValue
from tuneback.errors import ValidationError
from tuneback.server.access import rule, who
from tuneback.server.api.schemas import Body
from tuneback.server.deps import ServicesDep
from tuneback.server.web.labels import FACE_WORDS, last_question, tone
from tuneback.server.web.markdown import render_markdown
from tuneback.server.web.page import Page, page_count, page_view
from tuneback.services.annotation import parse_prompts
from tuneback.services.review import ReviewItem
from tuneback.storage.review import TaskProgress

router = APIRouter(include_in_schema=False)


RULE_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "thumbs_down_uncorrected": (
        "Thumbs-down without a correction",
        {"key": "thumbs", "max_score": 0, "lacks": "correction"},
    ),
    "thumbs_down": ("Thumbs-down", {"key": "thumbs", "max_score": 0}),
    "unhappy_faces": ("Unhappy faces (🙁 or worse)", {"key": "faces", "max_score": 0.25}),
    "low_stars": ("Two stars or fewer", {"key": "stars", "max_score": 0.25}),
    "commented": ("Has a comment", {"has": "comment"}),
    "unrated": ("No feedback yet", {"has": "none"}),
    "all": ("Every run", {}),
}
KEY_CHOICES = ("thumbs", "faces", "stars", "comment", "correction")


class QueueBody(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)
    preset: str | None = None
    rule: JsonObject = Field(default_factory=dict)
    keys: list[str] = Field(min_length=1, max_length=10)
    reviewers_per_item: int = Field(default=1, ge=1, le=20)
    lease_minutes: float = Field(default=10, gt=0, le=1440)


class AnswerBody(Body):
    answers: dict[str, RawValue] = Field(default_factory=dict)
    comment: str | None = Field(default=None, max_length=10_000)
    correction: str | None = Field(default=None, max_length=100_000)


class TaskBody(Body):
    name: str = Field(min_length=1, max_length=200)
    filename: str = Field(default="", max_length=300)
    content: str = Field(min_length=1)
    models: list[str] = Field(default_factory=list, max_length=10)
    keys: list[str] = Field(default_factory=lambda: ["thumbs", "comment", "correction"])
    reviewers_per_item: int = Field(default=1, ge=1, le=20)


def _reviewer(request: Request) -> str:
    return who(request).name


def _page_number(raw: str | None, last_page: int) -> int:
    """``?page=``: a whole number from 1; a page past the end shows the last page."""
    # Clamped rather than refused: a page number in a saved link goes stale as
    # the queue shrinks. Clamping before int() also keeps the offset of
    # ?page=9999999999999999999 from reaching the database.
    text = (raw or "1").strip()
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit() and digits):
        raise ValidationError(
            f"page: must be a whole number from 1, not {text[:20]!r}",
            details=[{"loc": ["query", "page"], "msg": "must be a whole number from 1"}],
        )
    return last_page if len(digits) > 12 else min(int(digits), last_page)


def _task_json(status: tuple[TaskProgress, bool]) -> dict[str, Any]:
    task, running = status
    return {
        "id": task.id,
        "name": task.name,
        "queue_id": task.queue_id,
        "models": task.models,
        "prompts": task.prompt_count,
        "total": task.total,
        "done": task.done,
        "failed": task.failed,
        "complete": task.complete,
        "running": running,
        "percent": round(100 * task.finished / task.total) if task.total else 100,
        "created_at": task.created_at.isoformat(),
    }


def _counts_json(progress: Any) -> dict[str, Any]:
    counts = progress.counts
    return {
        "total": counts.total,
        "pending": counts.pending,
        "needs_more": counts.needs_more,
        "completed": counts.completed,
        "percent": round(100 * progress.done_fraction),
    }


# -- the queues -------------------------------------------------------------------------


@router.get("/review", dependencies=[rule("review")])
@page_view
def overview(request: Request, services: ServicesDep) -> Page:
    """Every queue with its progress, the annotation tasks, and forms to make more."""
    project = services.project
    queues = services.reviews.queues(project)
    tasks = [_task_json(status) for status in services.tasks.statuses(project)]
    data = {
        "queues": [
            {**q.queue.model_dump(mode="json"), "progress": _counts_json(q)} for q in queues
        ],
        "tasks": tasks,
    }
    return Page(
        "review.html",
        "review",
        data,
        extra=lambda: {
            "queues": queues,
            "presets": RULE_PRESETS,
            "key_choices": KEY_CHOICES,
            "models": services.models.specs,
            "user": _reviewer(request),
        },
    )


@router.post("/ui/review/queues", dependencies=[rule("manage")])
def create_queue(request: Request, services: ServicesDep, body: QueueBody) -> dict[str, Any]:
    rule = dict(body.rule)
    if body.preset:
        if body.preset not in RULE_PRESETS:
            raise ValidationError(f"preset: choose one of {', '.join(RULE_PRESETS)}")
        rule = {**RULE_PRESETS[body.preset][1], **rule}
    queue = services.reviews.create_queue(
        project=services.project,
        name=body.name,
        description=body.description,
        rule={k: v for k, v in rule.items() if v not in (None, "")},
        keys=body.keys,
        reviewers_per_item=body.reviewers_per_item,
        lease_seconds=round(body.lease_minutes * 60),
        created_by=_reviewer(request),
    )
    return queue.model_dump(mode="json")


@router.get("/review/queues/{queue_id}", dependencies=[rule("review")])
@page_view
def queue_page(request: Request, services: ServicesDep, queue_id: str) -> Page:
    """A queue's progress, its reviewers, their agreement, and its items."""
    progress = services.reviews.progress(queue_id)
    queue = progress.queue
    last_page = page_count(progress.counts.total, 50)
    page = _page_number(request.query_params.get("page"), last_page)
    items = services.reviews.items(queue_id, limit=50, offset=(page - 1) * 50)
    visible = services.reviews.visible_answers(queue, items)
    agreement = services.reviews.agreement(queue_id)
    data = {
        "queue": queue,
        "progress": _counts_json(progress),
        "reviewers": progress.reviewers,
        "agreement": agreement,
        "items": [
            {
                "run_id": item.run.id,
                "status": item.status,
                "reviews": item.reviews,
                "leased_by": item.leased_by,
                "answers": visible.get(item.run.id, []),
            }
            for item in items
        ],
    }
    return Page(
        "review_queue.html",
        "review",
        data,
        extra=lambda: {
            "progress": progress,
            "items": [
                {
                    "item": item,
                    "question": last_question(item.run.inputs),
                    "answers": [_answer_label(f) for f in visible.get(item.run.id, [])],
                }
                for item in items
            ],
            "page": page,
            "pages": last_page,
            "user": _reviewer(request),
        },
    )


def _answer_label(feedback: FeedbackRecord) -> dict[str, str]:
    if feedback.correction:
        text = "correction"
    elif feedback.comment and feedback.value is None:
        text = f"“{feedback.comment[:60]}”"
    else:
        text = _said_label(feedback)
    return {"user": feedback.user or "", "text": text, "tone": tone(feedback.score)}


# -- working a queue --------------------------------------------------------------------


def _controls(queue: ReviewQueue, configs: dict[str, Any]) -> list[dict[str, Any]]:
    """What the page shows for each key the queue asks for, with keyboard shortcuts."""
    controls: list[dict[str, Any]] = []
    digits_taken = False
    for key in queue.rating_keys:
        config = configs.get(key) or BUILTIN_CONFIGS.get(key)
        choices: list[dict[str, Any]]
        if key == "thumbs":
            choices = [
                {"value": "up", "label": "Good", "icon": "thumb-up", "shortcut": "t"},
                {"value": "down", "label": "Bad", "icon": "thumb-down", "shortcut": "f"},
            ]
        elif key == "faces":
            choices = [
                {"value": face, "label": name, "icon": f"face-{index}", "shortcut": None}
                for index, (face, name) in enumerate(zip(FACES, FACE_WORDS, strict=True))
            ]
        elif key == "stars":
            choices = [
                {"value": n, "label": f"{n} star{'s' if n > 1 else ''}", "icon": f"stars-{n}"}
                for n in range(1, 6)
            ]
        elif isinstance(config, CategoricalConfig):
            choices = [
                {"value": c.label, "label": c.label, "icon": "", "shortcut": None}
                for c in config.categories
            ]
        else:
            low, high = (config.min, config.max) if isinstance(config, ContinuousConfig) else (0, 1)
            controls.append({"key": key, "kind": "number", "min": low, "max": high})
            continue
        # Digits pick on the first five-point scale; a second one is clicked.
        if key in ("faces", "stars") and not digits_taken:
            digits_taken = True
            for index, choice in enumerate(choices):
                choice["shortcut"] = str(index + 1)
        else:
            for choice in choices:
                choice.setdefault("shortcut", None)
        controls.append({"key": key, "kind": "choices", "choices": choices})
    return controls


def _said_label(feedback: FeedbackRecord) -> str:
    # Words, not emoji, for thumbs: the page must read the same on systems without emoji fonts.
    if feedback.key == "thumbs" and feedback.score is not None:
        return "thumbs up" if feedback.score >= 0.5 else "thumbs down"
    if feedback.key == "faces" and feedback.score is not None:
        return f"faces {FACE_WORDS[round(feedback.score * 4)].lower()}"
    if feedback.value is None:
        return feedback.key
    return f"{feedback.key} {describe_value(feedback.key, feedback.value)}"


def _item_view(item: ReviewItem) -> dict[str, Any]:
    run = item.run
    messages = []
    if isinstance(run.inputs, list):
        messages = [
            {"role": m.role, "content": m.content, "html": render_markdown(m.content)}
            for m in run.inputs
        ]
    said = [
        {
            "user": f.user or "someone",
            "source": f.source,
            "label": _said_label(f),
            "key": f.key,
            "comment": f.comment,
            "correction": f.correction,
            "tone": tone(f.score),
            "reasons": f.metadata.get("reasons", []),
        }
        for f in item.context
    ]
    return {
        "run": run,
        "messages": messages,
        "raw_inputs": None if isinstance(run.inputs, list) else run.inputs,
        "output_html": render_markdown(run.output or ""),
        "said": said,
        "expires_at": item.expires_at,
    }


@router.get("/review/queues/{queue_id}/work", dependencies=[rule("review")])
@page_view
def work_page(request: Request, services: ServicesDep, queue_id: str) -> Page:
    """One item at a time, reserved for whoever opened it."""
    queue = services.reviews.get(queue_id)
    user = _reviewer(request)
    progress = services.reviews.progress(queue)
    context: dict[str, Any] = {"queue": queue, "progress": progress, "user": user, "item": None}
    if user:
        item = services.reviews.next_item(queue_id, user)
        if item is not None:
            context["item"] = _item_view(item)
            context["controls"] = _controls(queue, services.store.feedback_configs(queue.project))
            context["seconds_left"] = int((item.expires_at - utcnow()).total_seconds())
        mine = next((r for r in progress.reviewers if r.reviewer == user), None)
        context["mine"] = mine.reviewed if mine else 0
    return Page("review_work.html", "review", context)


@router.post("/ui/review/queues/{queue_id}/next", dependencies=[rule("review")])
def next_item(request: Request, services: ServicesDep, queue_id: str) -> dict[str, Any]:
    """The item to work on as JSON (reserved like the page's), or ``{"item": null}``."""
    item = services.reviews.next_item(queue_id, _reviewer(request))
    if item is None:
        return {"item": None}
    return {
        "item": {
            "run": item.run.model_dump(mode="json"),
            "expires_at": item.expires_at.isoformat(),
            "context": [f.model_dump(mode="json") for f in item.context],
        }
    }


@router.post("/ui/review/queues/{queue_id}/items/{run_id}/submit", dependencies=[rule("review")])
def submit(
    request: Request, services: ServicesDep, queue_id: str, run_id: str, body: AnswerBody
) -> dict[str, Any]:
    stored = services.reviews.submit(
        queue_id,
        run_id,
        _reviewer(request),
        answers=body.answers,
        comment=body.comment,
        correction=body.correction,
    )
    return {"feedback": [f.model_dump(mode="json") for f in stored]}


@router.post("/ui/review/queues/{queue_id}/items/{run_id}/skip", dependencies=[rule("review")])
def skip(request: Request, services: ServicesDep, queue_id: str, run_id: str) -> dict[str, Any]:
    services.reviews.skip(queue_id, run_id, _reviewer(request))
    return {"skipped": run_id}


# -- annotation tasks ---------------------------------------------------------------------


@router.post("/ui/review/tasks", dependencies=[rule("manage")])
def create_task(request: Request, services: ServicesDep, body: TaskBody) -> dict[str, Any]:
    """Upload a prompt set; answering starts at once, in the background."""
    prompts = parse_prompts(body.filename, body.content)
    task = services.tasks.create(
        project=services.project,
        name=body.name,
        prompts=prompts,
        models=body.models,
        keys=body.keys,
        reviewers_per_item=body.reviewers_per_item,
        created_by=_reviewer(request),
    )
    return _task_json(services.tasks.status(task.id))


@router.get("/ui/review/tasks/{task_id}", dependencies=[rule("review")])
def task_progress(services: ServicesDep, task_id: str) -> dict[str, Any]:
    return _task_json(services.tasks.status(task_id))


@router.post("/ui/review/tasks/{task_id}/resume", dependencies=[rule("manage")])
def resume_task(services: ServicesDep, task_id: str) -> dict[str, Any]:
    """Answer what a stopped task (a server restart) left unanswered."""
    services.tasks.start(task_id)
    return _task_json(services.tasks.status(task_id))
