"""What a page handler returns, and the one renderer that answers it as HTML or JSON.

A handler builds its data once and returns a :class:`Page`; :func:`page_view`
turns it into the answer the request asks for. A program gets the JSON twin
(``?format=json``, or an Accept of JSON without HTML): exactly ``Page.data``,
made JSON-safe by FastAPI's encoder. A browser gets the template, which sees the
same data plus what only the HTML needs (``Page.extra``: chips, the filter
form's known values, rendered markdown), built only when HTML is asked for.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.responses import JSONResponse, Response

from tuneback.server.web.templating import render_page

Q = TypeVar("Q", bound=BaseModel)


@dataclass(frozen=True)
class Page:
    """A page's answer before it is rendered."""

    template: str
    section: str
    data: Mapping[str, Any]
    """The page's data: its JSON twin is exactly this; the template sees it too."""
    extra: Callable[[], Mapping[str, Any]] | None = None
    """What only the HTML shows, called only when HTML is asked for."""
    name: str | None = None
    """The name the template knows the data by; None spreads its keys into the context."""
    status_code: int = 200


def wants_json(request: Request) -> bool:
    """A program asking for a page's JSON twin (``?format=json`` or an Accept of JSON)."""
    accept = request.headers.get("accept", "")
    return request.query_params.get("format") == "json" or (
        "application/json" in accept and "text/html" not in accept
    )


def parse_query(model: type[Q], request: Request) -> tuple[Q, str | None]:
    """A page's filters from its URL; a bad one is ignored and said why, never a 4xx page.

    Empty fields count as absent: a form submitted with a blank field is no filter.
    """
    raw = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return model.model_validate(raw), None
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return model(), f"{where}: {first['msg']} — the filter was ignored"


def kept_params(request: Request) -> dict[str, str]:
    """The URL's filters without the page number, for links to other pages of the same view."""
    return {k: v for k, v in request.query_params.items() if v != "" and k != "page"}


def page_count(total: int, size: int) -> int:
    """How many pages ``total`` rows fill, at least one (an empty list is one empty page)."""
    return max(1, -(-total // size))


def render(request: Request, page: Page) -> Response:
    """The page as its JSON twin or as HTML, as the request asks."""
    if wants_json(request):
        return JSONResponse(jsonable_encoder(page.data), status_code=page.status_code)
    context: dict[str, Any] = {page.name: page.data} if page.name is not None else dict(page.data)
    if page.extra is not None:
        context.update(page.extra())
    return render_page(
        request, page.template, section=page.section, status_code=page.status_code, **context
    )


def page_view(endpoint: Callable[..., Page | Response]) -> Callable[..., Response]:
    """Let a route handler return a :class:`Page`; the request decides how it is rendered.

    A handler may still answer with a response of its own (a redirect).

    The handler must take ``request: Request``. FastAPI reads the handler's
    parameters from the signature given here, with its annotations resolved in
    the handler's own module.
    """
    hints = get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    if "request" not in signature.parameters:
        raise TypeError(f"{endpoint.__qualname__} needs a request parameter to be a page view")
    parameters = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
    ]

    @functools.wraps(endpoint)
    def view(*args: Any, **kwargs: Any) -> Response:
        answer = endpoint(*args, **kwargs)
        return answer if isinstance(answer, Response) else render(kwargs["request"], answer)

    view.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=Response
    )
    del view.__wrapped__
    return view
