"""The page a feedback link opens: the answer, the choices for the token's key, and thanks.

Opening the link records nothing: mail scanners and link previewers fetch links
on their own, so only a person pressing one of the page's buttons (a same-origin
form POST, no script) rates the answer. A link that cannot be used (forged,
expired, its key revoked, its answer gone) opens a page that says so, with a 4xx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tuneback.domain import Run
from tuneback.domain.feedback import (
    BUILTIN_CONFIGS,
    FACES,
    CategoricalConfig,
    ContinuousConfig,
    FeedbackConfig,
    FreeformConfig,
)
from tuneback.errors import NotFoundError
from tuneback.server.web.labels import FACE_WORDS, last_question
from tuneback.server.web.templating import render_page
from tuneback.services.keys import FeedbackClaims, KeyService, TokenError
from tuneback.storage import Store

EXCERPT_CHARS = 700
MOST_STEPS = 11
"""A numeric key with integer bounds and at most this many values gets one button per value."""


@dataclass(frozen=True)
class RatingChoice:
    value: str
    label: str
    icon: str = ""
    """``thumb-up``, ``thumb-down``, ``face-0``…``face-4``, ``stars-1``…``stars-5`` or none."""


@dataclass(frozen=True)
class RatingInput:
    """How a person gives a value on one key: buttons, a number in a range, or text."""

    key: str
    kind: Literal["choices", "number", "text"]
    choices: list[RatingChoice] = field(default_factory=list)
    low: float = 0.0
    high: float = 1.0


def rating_input(key: str, config: FeedbackConfig | None) -> RatingInput:
    """The input for ``key`` under its project's config, else the built-in rules."""
    config = config or BUILTIN_CONFIGS.get(key)
    if key == "thumbs" and not isinstance(config, FreeformConfig):
        choices = [
            RatingChoice("up", "Good", "thumb-up"),
            RatingChoice("down", "Bad", "thumb-down"),
        ]
        return RatingInput(key, "choices", choices)
    if key == "faces" and not isinstance(config, FreeformConfig):
        faces = zip(FACES, FACE_WORDS, strict=True)
        choices = [RatingChoice(face, word, f"face-{n}") for n, (face, word) in enumerate(faces)]
        return RatingInput(key, "choices", choices)
    if isinstance(config, CategoricalConfig):
        return RatingInput(
            key, "choices", [RatingChoice(c.label, c.label) for c in config.categories]
        )
    if isinstance(config, FreeformConfig):
        return RatingInput(key, "text")
    if not isinstance(config, ContinuousConfig):
        return RatingInput(key, "number")  # a key without a config takes a score in 0..1
    low, high = config.min, config.max
    if low.is_integer() and high.is_integer() and high - low < MOST_STEPS:
        stars = key == "stars" and (low, high) == (1, 5)
        choices = [
            RatingChoice(
                str(n),
                f"{n} star{'s' if n > 1 else ''}" if stars else str(n),
                f"stars-{n}" if stars else "",
            )
            for n in range(int(low), int(high) + 1)
        ]
        return RatingInput(key, "choices", choices, low, high)
    return RatingInput(key, "number", low=low, high=high)


def link_value(text: str | None) -> Any:
    """A value as a link or a form carries it: text, except that "4" means the number 4."""
    if text is None or text == "":
        return None
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return float(text) if "." in text else int(text)
    return text


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form (the last of each name), without a multipart parser."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}


@dataclass(frozen=True)
class LinkTarget:
    """What a usable link rates: the claims, the run, and how its key is given."""

    claims: FeedbackClaims
    run: Run
    rating: RatingInput


async def open_link(token: str, *, keys: KeyService, store: Store) -> LinkTarget | str:
    """The link's target, or why it cannot be used. Reads only."""
    try:
        claims = await run_in_threadpool(keys.check_token, token)
    except TokenError as exc:
        return str(exc)
    run = store.recent_run(claims.run_id)
    try:
        if run is None:
            run = await run_in_threadpool(store.get_run, claims.run_id)
    except NotFoundError:
        return "gone"
    if run.project != claims.project:
        return "gone"
    configs = await run_in_threadpool(store.feedback_configs, run.project)
    return LinkTarget(claims, run, rating_input(claims.key, configs.get(claims.key)))


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def question_of(run: Run) -> str:
    """The last thing the user said to get this answer, if the run kept it."""
    return excerpt(last_question(run.inputs), 300)


def link_page(
    request: Request,
    token: str,
    found: LinkTarget | str,
    *,
    status_code: int = 200,
    suggested: str | None = None,
    comment: str | None = None,
    user: str | None = None,
    problem: str | None = None,
    chosen: str | None = None,
) -> Response:
    """Render the page in the state ``found`` and ``chosen`` call for."""
    if isinstance(found, str):
        gone = found == "gone"
        return render_page(
            request,
            "feedback_link.html",
            section="",
            status_code=404 if gone else 401,
            state="gone" if gone else "refused",
            reason=None if gone else found,
        )
    rating = found.rating
    chosen_label = next((c.label for c in rating.choices if c.value == chosen), chosen)
    return render_page(
        request,
        "feedback_link.html",
        section="",
        status_code=status_code,
        state="thanks" if chosen is not None and problem is None else "ask",
        token=token,
        action=str(request.url_for("feedback_with_token_form", token=token)),
        key=found.claims.key,
        rating=rating,
        question=question_of(found.run),
        answer=excerpt(found.run.output),
        expires_at=found.claims.expires_at,
        suggested=suggested,
        comment=comment,
        user=user,
        problem=problem,
        chosen_label=chosen_label,
    )
