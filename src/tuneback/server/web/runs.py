"""Run detail and datasets pages, and the actions people take there (under ``/ui``)."""

from __future__ import annotations

import shlex
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tuneback.domain import FeedbackRecord, Run, describe_value
from tuneback.domain.common import UtcDatetime
from tuneback.domain.feedback import RawValue
from tuneback.errors import ValidationError
from tuneback.server.access import PrincipalDep, in_this_project, rule
from tuneback.server.api.schemas import Body
from tuneback.server.deps import ServicesDep
from tuneback.server.web.labels import last_question, tone
from tuneback.server.web.markdown import render_markdown
from tuneback.server.web.page import Page, kept_params, page_count, page_view, parse_query
from tuneback.storage import Store
from tuneback.storage.queries import COUNT_CAP, RunFilter

router = APIRouter(include_in_schema=False)


class AnnotateBody(Body):
    key: str = Field(min_length=1, max_length=64)
    value: RawValue = None
    comment: str | None = Field(default=None, max_length=10_000)
    correction: str | None = Field(default=None, max_length=100_000)


def feedback_rows(history: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for fb in history:
        state: Literal["current", "superseded", "retracted"] = (
            "retracted" if fb.retracted_at else "superseded" if fb.superseded_by else "current"
        )
        rows.append(
            {
                **fb.model_dump(mode="json"),
                "label": describe_value(fb.key, fb.value),
                "state": state,
                "reasons": fb.metadata.get("reasons", []),
            }
        )
    return rows


EXPLORER_PARAMS = (
    "model", "user", "status", "tag", "since", "until", "key", "min_score", "max_score",
    "has", "min_latency_ms", "max_latency_ms", "min_tokens", "max_tokens", "q", "sort",
)  # fmt: skip
SORTS = {"newest": "newest", "oldest": "oldest", "latency": "slowest", "slowest": "slowest",
         "fastest": "fastest", "tokens": "tokens"}  # fmt: skip
PAGE_SIZE = 50


class ExplorerQuery(BaseModel):
    """The runs explorer's URL: every filter is a query parameter, so a view can be shared."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    user: str | None = None
    status: Literal["ok", "error", "cancelled"] | None = None
    tag: str | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    key: str | None = None
    min_score: float | None = Field(default=None, ge=0, le=1)
    max_score: float | None = Field(default=None, ge=0, le=1)
    has: Literal["feedback", "correction", "comment", "none"] | None = None
    min_latency_ms: float | None = Field(default=None, ge=0)
    max_latency_ms: float | None = Field(default=None, ge=0)
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    q: str | None = Field(default=None, max_length=200)
    sort: str = "newest"
    page: int = Field(default=1, ge=1, le=10_000)

    def run_filter(self, project: str) -> RunFilter:
        scored = self.min_score is not None or self.max_score is not None
        return RunFilter(
            project=project,
            model=self.model,
            user=self.user,
            status=self.status,
            tag=self.tag,
            since=self.since,
            until=self.until,
            has_feedback=self.key if self.key and not scored else None,
            score_key=self.key if scored else None,
            min_score=self.min_score,
            max_score=self.max_score,
            has=self.has,
            min_latency_ms=self.min_latency_ms,
            max_latency_ms=self.max_latency_ms,
            min_tokens=self.min_tokens,
            max_tokens=self.max_tokens,
            text=self.q or None,
        )


def _explorer_query(request: Request) -> tuple[ExplorerQuery, str | None]:
    parsed, problem = parse_query(ExplorerQuery, request)
    if problem is not None:
        return parsed, problem
    if parsed.sort not in SORTS:
        return parsed.model_copy(update={"sort": "newest"}), f"unknown sort {parsed.sort!r}"
    return parsed, None


def _chips(request: Request, query: ExplorerQuery) -> list[dict[str, str]]:
    params = kept_params(request)
    chips = []
    for name in EXPLORER_PARAMS:
        if name not in params or name == "sort":
            continue
        rest = {k: v for k, v in params.items() if k != name}
        label = {
            "has": {"none": "no feedback yet"}.get(params[name], f"has {params[name]}"),
            "q": f"“{params[name]}”",
            "min_score": f"score ≥ {params[name]}",
            "max_score": f"score ≤ {params[name]}",
            "min_latency_ms": f"latency ≥ {params[name]} ms",
            "max_latency_ms": f"latency ≤ {params[name]} ms",
            "min_tokens": f"tokens ≥ {params[name]}",
            "max_tokens": f"tokens ≤ {params[name]}",
            "since": f"since {params[name][:16]}",
            "until": f"until {params[name][:16]}",
        }.get(name, f"{name} {params[name]}")
        chips.append({"label": label, "remove": "/runs?" + urlencode(rest)})
    return chips


def _export_command(project: str, query: ExplorerQuery) -> str:
    """The ``tuneback export`` line for this view, safe to paste into a shell.

    Filter values come from the URL, so every argument is quoted: a model named
    ``gpt $(touch pwned)`` must stay one argument, never a command.
    """
    argv = ["tuneback", "export", "runs", "--output", "data/", "--project", project]
    for flag, value in (
        ("--model", query.model),
        ("--since", query.since.isoformat() if query.since else None),
        ("--until", query.until.isoformat() if query.until else None),
        ("--key", query.key),
        ("--min-score", query.min_score),
        ("--max-score", query.max_score),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return shlex.join(argv)


@router.get("/runs", dependencies=[rule("read")])
@page_view
def explorer(request: Request, services: ServicesDep) -> Page:
    """Runs filtered, sorted and paged; the URL holds the whole view."""
    query, problem = _explorer_query(request)
    project = services.project
    browse = services.browse
    rows, total = services.queries.explore(
        query.run_filter(project),
        sort=SORTS[query.sort],  # type: ignore[arg-type]
        limit=PAGE_SIZE,
        offset=(query.page - 1) * PAGE_SIZE,
    )
    return Page(
        "runs.html",
        "runs",
        {"data": rows, "count": total, "page": query.page},
        extra=lambda: {
            "rows": [_explorer_row(row) for row in rows],
            "total": total,
            "query": query,
            "problem": problem,
            "chips": _chips(request, query),
            "pages": page_count(min(total, COUNT_CAP), PAGE_SIZE),
            "params": kept_params(request),
            "sorts": list(SORTS),
            "export_command": _export_command(project, query),
            "count_cap": COUNT_CAP,
            "datasets": services.store.list_datasets(project),
            "known_models": browse.known_values(project, "model"),
            "known_users": browse.known_values(project, "user"),
        },
    )


def _explorer_row(row: dict[str, Any]) -> dict[str, Any]:
    run = row["run"]
    badges = []
    for fb in row["feedback"]:
        if fb.kind == "implicit":
            badges.append({"text": fb.key, "tone": ""})
        elif fb.kind == "correction":
            badges.append({"text": "correction", "tone": "accent"})
        elif fb.kind == "comment" or (fb.comment and fb.score is None):
            badges.append({"text": "comment", "tone": ""})
        else:
            label = describe_value(fb.key, fb.value) if fb.key != "thumbs" else str(fb.value)
            badges.append({"text": f"{fb.key} {label}", "tone": tone(fb.score)})
            if fb.comment:
                badges.append({"text": "comment", "tone": ""})
    comment = next((fb.comment for fb in row["feedback"] if fb.comment), None)
    return {
        "run": run,
        "prompt": last_question(run.inputs),
        "badges": badges,
        "comment": comment,
    }


@router.post("/ui/runs/to-dataset", dependencies=[rule("manage")])
def filter_to_dataset(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Add every run the explorer's current filter matches (up to 10,000) to a dataset."""
    query, problem = _explorer_query(request)
    if problem:
        raise ValidationError(problem)
    dataset_id = request.query_params.get("dataset_id")
    if not dataset_id:
        raise ValidationError("dataset_id: choose a dataset")
    rows, _total = services.queries.explore(query.run_filter(services.project), limit=10_000)
    usable = [row["run"].id for row in rows if isinstance(row["run"].inputs, list)]
    datasets = services.datasets
    in_this_project(request, datasets.get(dataset_id).project, "dataset", dataset_id)
    added = datasets.add_runs(dataset_id, usable)
    return {"matched": len(rows), "added": len(added)}


@router.get("/runs/{run_id}", dependencies=[rule("read")])
@page_view
def run_detail(request: Request, services: ServicesDep, run_id: str) -> Page:
    """The run with its inputs, answer, timings, conversation and every piece of feedback."""
    store = services.store
    run = store.get_run(run_id)
    in_this_project(request, run.project, "run", run_id)
    history = store.feedback_for_run(run_id, history=True)
    tree = services.browse.run_tree(run)
    data = {
        "run": run,
        "feedback": [f.model_dump(mode="json") | {"current": f.current} for f in history],
        "tree": [
            {
                "id": node.id,
                "parent_run_id": node.parent_run_id,
                "depth": depth,
                "name": node.name,
                "run_type": node.run_type,
                "status": node.status,
                "latency_ms": node.latency_ms,
            }
            for node, depth in tree
        ]
        if len(tree) > 1
        else [],
    }
    return Page(
        "run.html", "runs", data, extra=lambda: _run_detail(services.store, run, history, tree)
    )


def _run_detail(
    store: Store, run: Run, history: list[FeedbackRecord], tree: list[tuple[Run, int]]
) -> dict[str, Any]:
    """The run as its page shows it: messages rendered, feedback labelled, the chain drawn."""
    conversation = []
    if run.conversation_id is not None:
        for message in store.conversation_messages(run.conversation_id):
            conversation.append(
                {
                    "role": message.role,
                    "content": message.content,
                    "html": render_markdown(message.content),
                    "run_id": message.run_id,
                    "this": message.run_id == run.id,
                }
            )
    inputs = (
        [
            {"role": m.role, "content": m.content, "html": render_markdown(m.content)}
            for m in run.inputs
        ]
        if isinstance(run.inputs, list)
        else None
    )
    return {
        "inputs": inputs,
        "output_html": render_markdown(run.output or ""),
        "conversation": conversation,
        "feedback": feedback_rows(history),
        "datasets": store.list_datasets(run.project),
        "tree": _tree_rows(run, tree),
    }


def _tree_rows(run: Any, tree: list[tuple[Any, int]]) -> list[dict[str, Any]]:
    """The chain around a run, for the page: each step with its share of the root's time."""
    if len(tree) < 2:
        return []
    root = tree[0][0]
    total = max((node.latency_ms or 0 for node, _ in tree), default=0) or 1
    start = root.happened_at
    rows = []
    for node, depth in tree:
        offset = max((node.happened_at - start).total_seconds() * 1000, 0)
        share = (node.latency_ms or 0) / total
        rows.append(
            {
                "run": node,
                "depth": depth,
                "this": node.id == run.id,
                "label": node.name or node.model or node.run_type,
                "offset": min(offset / total, 1.0),
                "width": max(min(share, 1.0 - min(offset / total, 1.0)), 0.01),
            }
        )
    return rows


@router.post("/ui/runs/{run_id}/annotate", dependencies=[rule("review")])
def annotate(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    run_id: str,
    body: AnnotateBody,
) -> dict[str, Any]:
    """Feedback given by a reviewer on the run page, under their own name (source: annotator)."""
    if body.value is None and not body.comment and not body.correction:
        raise ValidationError("give a rating, a comment or a correction")
    in_this_project(request, services.store.get_run(run_id).project, "run", run_id)
    recorded = services.feedback.record(
        run_id=run_id,
        key=body.key,
        value=body.value,
        comment=body.comment or None,
        correction=body.correction or None,
        user=principal.name,
        source="annotator",
    )
    return recorded.model_dump(mode="json")
