"""Bad input gets a 4xx in the one error shape: never a 500, never an error in the server log.

The named cases are the inputs that once answered 500; the property tests then
throw hostile JSON values and query strings at a representative set of routes
(the API, the ``/ui`` endpoints and the pages), on both databases.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import BASE, make_app, run_body
from tests.conftest import _postgres_schema_url as postgres_schema_url
from tests.visitors import open_pages_sync
from tuneback.domain.common import MAX_JSON_DEPTH
from tuneback.services.keys import KeyService
from tuneback.storage import Store

RUN_ID = "run-1"
CONVERSATION_ID = "conv-1"
OVERFLOWING_UTC = "9999-12-31T23:59:59-23:59"
ERROR_SHAPE = {"type", "message", "details"}


@dataclass
class Site:
    client: TestClient
    caplog: pytest.LogCaptureFixture
    queue_id: str

    def send(self, method: str, url: str, *, body: str | None = None) -> httpx.Response:
        """One request; fails on a 5xx, a 4xx outside the error shape, or an error logged."""
        seen = len(self.caplog.records)
        headers = {"content-type": "application/json"} if body is not None else {}
        response = self.client.request(method, url, content=body, headers=headers)
        logged = [
            f"{r.levelname} {r.getMessage()}"
            for r in self.caplog.records[seen:]
            if r.name.startswith("tuneback.server") and r.levelno >= logging.ERROR
        ]
        where = f"{method} {url[:200]} {(body or '')[:200]!r}"
        assert response.status_code < 500, (where, response.text[:500])
        assert logged == [], (where, logged)
        if response.status_code >= 400:
            if response.headers.get("content-type", "").startswith("text/html"):
                # A page's own "not found" page is HTML on purpose; nothing else is.
                assert response.status_code == 404, (where, response.text[:500])
            else:
                assert set(response.json()) == {"error"}, (where, response.text[:500])
                assert set(response.json()["error"]) == ERROR_SHAPE, (where, response.text[:500])
        return response

    def refused(self, method: str, url: str, *, body: str | None = None) -> dict[str, Any]:
        """The error of a request that must be a 422; returns its ``error`` object."""
        response = self.send(method, url, body=body)
        assert response.status_code == 422, response.text[:500]
        error: dict[str, Any] = response.json()["error"]
        return error


@dataclass
class Served:
    client: TestClient
    queue_id: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One app per database for the whole module: every test here only sends bad input,
    so they can share it, and the module stays fast on both databases."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bad_input') / 'tuneback.db'}"
    else:
        url = postgres_schema_url(request.getfixturevalue("postgres_database"))
    with Store(url) as store:
        app = make_app(store)
        key = KeyService(store).create("default", name="tests").key
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(
            app, base_url=BASE, headers=headers, raise_server_exceptions=False
        ) as client:
            open_pages_sync(client)
            made = client.post("/api/v1/runs", json=run_body(id=RUN_ID))
            assert made.status_code == 201, made.text
            made = client.post("/api/v1/conversations", json={"id": CONVERSATION_ID, "user": "ann"})
            assert made.status_code == 201, made.text
            queue = client.post(
                "/ui/review/queues", json={"name": "q", "preset": "all", "keys": ["thumbs"]}
            )
            assert queue.status_code == 200, queue.text
            yield Served(client, queue.json()["id"])


@pytest.fixture
def site(served: Served, caplog: pytest.LogCaptureFixture) -> Site:
    caplog.set_level(logging.WARNING, logger="tuneback.server")
    served.client.headers.pop("accept", None)
    return Site(served.client, caplog, served.queue_id)


def nested(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)


def with_value(template: dict[str, Any], value_json: str) -> str:
    """``template`` as JSON text with its ``"HOSTILE"`` placeholder replaced by ``value_json``."""
    text = json.dumps(template)
    assert text.count('"HOSTILE"') == 1, text
    return text.replace('"HOSTILE"', value_json)


# -- the cases that answered 500 --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/runs", {**run_body(), "metadata": {"deep": "HOSTILE"}}),
        ("/api/v1/feedback", {"run_id": RUN_ID, "key": "stars", "value": 4, "metadata": "HOSTILE"}),
        ("/api/v1/conversations", {"user": "ann", "metadata": "HOSTILE"}),
        ("/api/v1/comparisons", {"candidates": [{"run_id": RUN_ID}] * 2, "metadata": "HOSTILE"}),
        ("/api/v1/runs", {**run_body(), "params": "HOSTILE"}),
    ],
)
def test_metadata_nested_900_deep_is_a_422_naming_the_limit(
    site: Site, path: str, template: dict[str, Any]
) -> None:
    error = site.refused("POST", path, body=with_value(template, nested(900)))
    assert error["type"] == "validation_error"
    assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"]


def test_metadata_at_the_depth_limit_is_accepted(site: Site) -> None:
    body = with_value({**run_body(), "metadata": "HOSTILE"}, nested(MAX_JSON_DEPTH))
    assert site.send("POST", "/api/v1/runs", body=body).status_code == 201
    body = with_value({**run_body(), "metadata": "HOSTILE"}, nested(MAX_JSON_DEPTH + 1))
    assert "deeper than 64 levels" in site.refused("POST", "/api/v1/runs", body=body)["message"]


def test_a_body_nested_past_the_parser_is_a_4xx(site: Site) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/runs", "/ui/datasets"):
        assert site.send("POST", path, body=deep).status_code == 400


@pytest.mark.parametrize(
    ("body", "reason", "at"),
    [
        ("{bad", "Expecting property name enclosed in double quotes", 1),
        ('{"output": "4",}', "Expecting property name enclosed in double quotes", 15),
        ("[1, 2", "Expecting ',' delimiter", 5),
    ],
)
def test_a_body_that_is_not_json_is_a_400_saying_where(
    site: Site, body: str, reason: str, at: int
) -> None:
    response = site.send("POST", "/api/v1/runs", body=body)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "bad_request",
        "message": f"the body is not valid JSON: {reason} (at character {at})",
        "details": {"at": at},
    }


@pytest.mark.parametrize("key", ["stars", "faces", "thumbs", "accuracy"])
def test_a_huge_integer_value_is_a_422(site: Site, key: str) -> None:
    body = with_value({"run_id": RUN_ID, "key": key, "value": "HOSTILE"}, str(10**400))
    error = site.refused("POST", "/api/v1/feedback", body=body)
    assert error["message"] == (
        "body.value: Value error, numbers must be finite (got an integer too large for a float)"
    )
    body = json.dumps({"key": key, "value": 10**400})
    assert "too large" in site.refused("POST", f"/ui/runs/{RUN_ID}/annotate", body=body)["message"]


def test_created_at_that_overflows_utc_is_a_422_naming_the_field(site: Site) -> None:
    body = json.dumps(run_body(created_at=OVERFLOWING_UTC))
    error = site.refused("POST", "/api/v1/runs", body=body)
    assert error["message"] == (
        "body.created_at: Value error, is out of range once converted to UTC (years 1..9999)"
    )
    body = json.dumps({"role": "user", "content": "hi", "created_at": OVERFLOWING_UTC})
    error = site.refused("POST", f"/api/v1/conversations/{CONVERSATION_ID}/messages", body=body)
    assert error["message"].startswith("body.created_at: ")


def test_since_that_overflows_utc(site: Site) -> None:
    error = site.refused("GET", f"/api/v1/runs?since={quote(OVERFLOWING_UTC)}")
    assert error["message"].startswith("query.since: ")
    # The runs explorer keeps its habit for a bad filter: the page, with a notice.
    page = site.send("GET", f"/runs?since={quote(OVERFLOWING_UTC)}&format=json")
    assert page.status_code == 200


def test_review_page_number_that_is_not_a_number_is_a_422(site: Site) -> None:
    for page in ("abc", "0", "-1", "1.5", "%00"):
        error = site.refused("GET", f"/review/queues/{site.queue_id}?page={page}")
        assert error["message"].startswith("page: ") or "NUL" in error["message"]


def test_review_page_number_past_the_end_shows_the_last_page(site: Site) -> None:
    url = f"/review/queues/{site.queue_id}?format=json&page="
    first = site.send("GET", url + "1").json()
    last_page = -(-first["progress"]["total"] // 50)
    last = site.send("GET", url + str(last_page)).json()["items"]
    assert last
    for page in ("2", "9999999999999", "9" * 40):
        response = site.send("GET", url + page)
        assert response.status_code == 200
        assert response.json()["items"] == last
        assert site.send("GET", url.replace("format=json&", "") + page).status_code == 200


def test_prompt_file_with_a_csv_field_over_128_kib_is_a_422(site: Site) -> None:
    content = 'prompt\nshort\n"' + "a" * (130 * 1024) + '"\n'
    body = json.dumps({"name": "t", "filename": "p.csv", "content": content})
    error = site.refused("POST", "/ui/review/tasks", body=body)
    assert error["message"] == (
        "line 3: not valid CSV: a field is longer than 128 KiB (131,072 characters)"
    )


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 100_000])
def test_prompt_file_with_deeply_nested_jsonl_is_a_422(site: Site, depth: int) -> None:
    line = '{"prompt": "hi", "extra": ' + "[" * depth + "]" * depth + "}"
    body = json.dumps({"name": "t", "filename": "p.jsonl", "content": line})
    error = site.refused("POST", "/ui/review/tasks", body=body)
    assert error["message"] == f"line 1: JSON nested deeper than {MAX_JSON_DEPTH} levels"


@pytest.mark.parametrize(
    "url",
    [
        "/runs?model=%00",
        "/runs?q=a%00b",
        "/c/%00",
        "/runs/%00",
        "/datasets/%00",
        "/dashboard?model=%00",
        "/review?user=%00",
        f"/ui/runs/{RUN_ID}%00",
        "/ui/review/tasks/%00",
    ],
)
def test_nul_in_a_page_url_is_refused_before_the_database(site: Site, url: str) -> None:
    assert site.refused("GET", url)["message"] == "the URL may not contain NUL (%00) characters"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/ui/runs/{RUN_ID}/annotate", {"key": "comment", "comment": "a\x00b"}),
        ("/ui/datasets", {"name": "a\x00b"}),
        ("/ui/review/queues", {"name": "q", "keys": ["thumbs"], "rule": {"model": "\x00"}}),
        ("/ui/chat?user=ann", {"content": "hi\x00"}),
    ],
)
def test_nul_in_a_ui_body_is_a_422(site: Site, path: str, body: dict[str, Any]) -> None:
    error = site.refused("POST", path, body=json.dumps(body))
    assert "NUL" in error["message"]


# -- hostile values anywhere --------------------------------------------------------------

HOSTILE_JSON = st.one_of(
    st.sampled_from(
        [
            nested(MAX_JSON_DEPTH + 1),
            nested(900),
            "[" * 5000 + "]" * 5000,
            str(10**400),
            str(-(10**400)),
            "1" * 5000,
            "1e999",
            "-1e999",
            "NaN",
            "Infinity",
            '"\\u0000"',
            '"a\\u0000b"',
            '"\\ud800"',
            '"x\\udfff"',
            '{"\\u0000": 1}',
            '{"\\ud800": [1]}',
            json.dumps("x" * 300_000),
            json.dumps(OVERFLOWING_UTC),
            '"0001-01-01T00:00:00+23:59"',
            '"10000-01-01T00:00:00Z"',
            '"2024-02-30T00:00:00"',
            "true",
            "null",
            "[]",
            "{}",
            '"up"',
            "-1",
            "0",
            "4.5",
        ]
    ),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.text(max_size=30).map(json.dumps),
)

BODY_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/runs", {**run_body(), "output": "HOSTILE"}),
    ("POST", "/api/v1/runs", {**run_body(), "metadata": {"k": "HOSTILE"}}),
    ("POST", "/api/v1/runs", {**run_body(), "params": "HOSTILE"}),
    ("POST", "/api/v1/runs", {**run_body(), "inputs": "HOSTILE"}),
    ("POST", "/api/v1/runs", {**run_body(), "created_at": "HOSTILE"}),
    ("POST", "/api/v1/runs", {**run_body(), "prompt_tokens": "HOSTILE"}),
    ("POST", "/api/v1/runs", {**run_body(), "latency_ms": "HOSTILE"}),
    ("POST", "/api/v1/runs", {**run_body(), "tags": ["HOSTILE"]}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "stars", "value": "HOSTILE"}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "faces", "value": "HOSTILE"}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "thumbs", "value": "HOSTILE"}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "accuracy", "value": "HOSTILE"}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "thumbs", "score": "HOSTILE"}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "HOSTILE", "value": 1}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "c", "comment": "HOSTILE"}),
    ("POST", "/api/v1/feedback", {"run_id": RUN_ID, "key": "c", "metadata": "HOSTILE"}),
    ("POST", "/api/v1/ingest", {"items": [{**run_body(), "type": "run", "output": "HOSTILE"}]}),
    ("POST", "/api/v1/ingest", {"items": [{"type": "feedback", "run_id": RUN_ID, "key": "stars", "value": "HOSTILE"}]}),  # noqa: E501
    ("POST", "/api/v1/ingest", {"items": "HOSTILE"}),
    ("POST", "/api/v1/comparisons", {"candidates": [{"run_id": RUN_ID}] * 2, "comment": "HOSTILE"}),
    ("POST", "/api/v1/comparisons", {"candidates": [{"run_id": "HOSTILE"}, {"run_id": RUN_ID}]}),
    ("POST", "/api/v1/conversations", {"user": "ann", "title": "HOSTILE"}),
    ("POST", "/api/v1/conversations", {"user": "ann", "started_at": "HOSTILE"}),
    ("POST", f"/api/v1/conversations/{CONVERSATION_ID}/messages", {"role": "user", "content": "HOSTILE"}),  # noqa: E501
    ("POST", f"/api/v1/conversations/{CONVERSATION_ID}/messages", {"role": "user", "content": "x", "created_at": "HOSTILE"}),  # noqa: E501
    ("PUT", "/api/v1/feedback-configs/accuracy", {"config": {"type": "continuous", "min": 0, "max": "HOSTILE"}}),  # noqa: E501
    ("PUT", "/api/v1/feedback-configs/accuracy", {"config": "HOSTILE"}),
    ("POST", f"/ui/runs/{RUN_ID}/annotate", {"key": "stars", "value": "HOSTILE"}),
    ("POST", f"/ui/runs/{RUN_ID}/annotate", {"key": "comment", "comment": "HOSTILE"}),
    ("POST", f"/ui/runs/{RUN_ID}/feedback?user=ann", {"key": "thumbs", "value": "HOSTILE"}),
    ("POST", "/ui/datasets", {"name": "HOSTILE"}),
    ("POST", "/ui/review/queues", {"name": "q", "keys": ["thumbs"], "rule": "HOSTILE"}),
    ("POST", "/ui/review/tasks", {"name": "t", "filename": "p.jsonl", "content": "HOSTILE"}),
]  # fmt: skip

HOSTILE_QUERY = st.sampled_from(
    [
        "%00",
        "a%00b",
        quote(OVERFLOWING_UTC),
        quote("0001-01-01T00:00:00+23:59"),
        "10000-01-01",
        "abc",
        "9" * 40,
        "-1",
        "0",
        "1e999",
        "nan",
        "%FF%FE",
        "%ED%A0%80",
        "x" * 5000,
        "",
        "%5B%5D",
    ]
)

QUERY_ROUTES = [
    *(f"/runs?{name}=" for name in ("model", "since", "until", "min_score", "page", "q", "sort")),
    *(f"/runs?format=json&{name}=" for name in ("max_tokens", "min_latency_ms", "has")),
    "/dashboard?period=",
    "/dashboard?model=",
    "/datasets?page=",
    "/review?user=",
    "/review/queues/{queue}?page=",
    "/review/queues/{queue}?format=json&page=",
    "/review/queues/{queue}/work?user=",
    "/api/v1/runs?since=",
    "/api/v1/runs?limit=",
    "/api/v1/runs?min_score=",
    "/api/v1/runs?cursor=",
    "/api/v1/feedback?run_id=",
    "/api/v1/comparisons?limit=",
    "/api/v1/conversations?user=",
    "/api/v1/events?after=",
    "/api/v1/stats?period=",
]
PATH_ROUTES = ["/runs/", "/c/", "/datasets/", "/ui/runs/", "/api/v1/runs/", "/review/queues/"]

HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.slow
def test_hostile_json_values_in_bodies_are_refused_cleanly(site: Site) -> None:
    @HYPOTHESIS
    @given(route=st.sampled_from(BODY_ROUTES), value=HOSTILE_JSON)
    def check(route: tuple[str, str, dict[str, Any]], value: str) -> None:
        method, path, template = route
        site.send(method, path, body=with_value(template, value))

    check()


@pytest.mark.slow
def test_hostile_query_strings_and_paths_are_refused_cleanly(site: Site) -> None:
    @HYPOTHESIS
    @given(
        route=st.sampled_from(QUERY_ROUTES + PATH_ROUTES),
        value=HOSTILE_QUERY,
        accept=st.sampled_from(["text/html", "application/json"]),
    )
    def check(route: str, value: str, accept: str) -> None:
        site.client.headers["accept"] = accept
        site.send("GET", route.replace("{queue}", site.queue_id) + value)

    check()
