"""A body read with ``json_body`` is answered exactly as FastAPI's own body parameter is.

FastAPI is the oracle: one app takes ``FeedbackCreate`` as a body parameter, the
other reads it with ``json_body``, both behind tuneback's error handlers, and every
request below (good, malformed, another media type, text only the standard
library parses) gets the same status and the same body from each.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from tuneback.server.api.deps import json_body
from tuneback.server.api.schemas import FeedbackCreate
from tuneback.server.errors import install_error_handlers

GOOD = b'{"run_id": "r1", "key": "thumbs", "value": "up", "metadata": {"screen": "chat"}}'
HUGE = b'{"run_id": "r1", "key": "n", "value": 1' + b"0" * 40 + b"}"
DEEP = b'{"run_id": "r1", "key": "k", "metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 41

CASES: list[tuple[str, str | None, bytes]] = [
    ("good", "application/json", GOOD),
    ("charset", "application/json; charset=utf-8", GOOD),
    ("upper case media type", "Application/JSON", GOOD),
    ("a +json media type", "application/vnd.tuneback+json", GOOD),
    ("no media type", None, GOOD),
    ("plain text", "text/plain", GOOD),
    ("a form", "application/x-www-form-urlencoded", b"run_id=r1&key=thumbs"),
    ("empty", "application/json", b""),
    ("not JSON", "application/json", b"{run_id: r1}"),
    ("cut short", "application/json", b'{"run_id": "r1", "key": '),
    ("a list", "application/json", b"[1, 2]"),
    ("a string", "application/json", b'"up"'),
    ("null", "application/json", b"null"),
    ("a field missing", "application/json", b'{"key": "thumbs"}'),
    ("a wrong type", "application/json", b'{"run_id": 5, "key": "thumbs"}'),
    ("an unknown field", "application/json", GOOD[:-1] + b', "extra": 1}'),
    ("a bad id", "application/json", b'{"run_id": "a b", "key": "thumbs"}'),
    ("NUL", "application/json", b'{"run_id": "r1", "key": "thumbs", "comment": "a\\u0000b"}'),
    ("a lone surrogate", "application/json", b'{"run_id": "r1", "key": "k", "comment": "\\ud800"}'),
    ("an integer score", "application/json", b'{"run_id": "r1", "key": "thumbs", "score": 1}'),
    ("a number value", "application/json", b'{"run_id": "r1", "key": "stars", "value": 4.5}'),
    ("a true value", "application/json", b'{"run_id": "r1", "key": "ok", "value": true}'),
    ("an overflowing score", "application/json", b'{"run_id": "r1", "key": "k", "score": 1e400}'),
    ("NaN score", "application/json", b'{"run_id": "r1", "key": "thumbs", "score": NaN}'),
    ("a huge integer", "application/json", HUGE),
    ("deep metadata", "application/json", DEEP),
    ("no comment", "application/json", b'{"run_id": "r1", "key": "k", "kind": "comment"}'),
    ("not UTF-8", "application/json", b'{"run_id": "r\xff", "key": "thumbs"}'),
]  # fmt: skip


def _app(read_own_body: bool) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    if read_own_body:

        @app.post("/feedback")
        async def ours(request: Request) -> dict[str, Any]:
            return (await json_body(request, FeedbackCreate)).model_dump()

    else:

        @app.post("/feedback")
        async def fastapis(body: FeedbackCreate) -> dict[str, Any]:
            return body.model_dump()

    return app


async def _answer(app: FastAPI, content_type: str | None, raw: bytes) -> tuple[int, Any]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/feedback", content=raw, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(("content_type", "raw"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_answered_as_fastapis_body_parameter(content_type: str | None, raw: bytes) -> None:
    expected = await _answer(_app(read_own_body=False), content_type, raw)
    assert await _answer(_app(read_own_body=True), content_type, raw) == expected


async def test_the_cases_reach_both_outcomes() -> None:
    # The comparison above is only worth something if some cases pass and some fail.
    statuses = {(await _answer(_app(True), c, raw))[0] for _, c, raw in CASES}
    assert {200, 400, 422} <= statuses
