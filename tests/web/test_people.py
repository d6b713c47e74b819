"""People stay apart: a browser's conversations are its own, reviewers rate under their names.

In-process through ``httpx.ASGITransport``, on both databases; each client is one
browser (its own identity cookie and CSRF token).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import BASE, make_app, run_body
from tests.visitors import add_account, identity, open_pages, sign_in
from tuneback.errors import ValidationError
from tuneback.server.access import PASS_COOKIE
from tuneback.services.feedback import FeedbackService
from tuneback.services.invitations import Invitations
from tuneback.services.keys import KeyService
from tuneback.storage import Store


@pytest.fixture
def app(store: Store) -> FastAPI:
    return make_app(store, model="echo")


@pytest.fixture
async def browsers(app: FastAPI) -> AsyncIterator[list[httpx.AsyncClient]]:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as first,
        httpx.AsyncClient(transport=transport, base_url=BASE) as second,
    ):
        yield [await open_pages(first), await open_pages(second)]


async def _chat(client: httpx.AsyncClient, text: str) -> dict[str, str]:
    streamed = await client.post("/ui/chat", json={"content": text})
    assert streamed.status_code == 200, streamed.text
    start = streamed.text.split("event: start\ndata: ", 1)[1].split("\n", 1)[0]
    ids: dict[str, str] = json.loads(start)
    return ids


async def test_a_browser_sees_and_rates_only_its_own_conversations(
    browsers: list[httpx.AsyncClient], store: Store
) -> None:
    ann, other = browsers
    ids = await _chat(ann, "Ann's private question")
    ann_name = await identity(ann)
    assert ann_name.startswith("guest-")
    assert await identity(other) != ann_name
    # A name in the address changes nothing: nobody becomes Ann by typing her name.
    assert (await other.get("/ui/state", params={"user": ann_name})).json()["user"] != ann_name
    conversation = f"/ui/conversations/{ids['conversation_id']}"
    assert (await ann.get(conversation)).status_code == 200
    assert (await other.get(conversation)).status_code == 404
    assert (await other.get("/ui/conversations")).json() == []
    rating = {"key": "thumbs", "value": "down"}
    refused = await other.post(f"/ui/runs/{ids['run_id']}/feedback", json=rating)
    assert refused.status_code == 404
    given = await ann.post(f"/ui/runs/{ids['run_id']}/feedback", json=rating)
    assert given.status_code == 200, given.text
    taken_back = await other.delete(f"/ui/feedback/{given.json()['id']}")
    assert taken_back.status_code == 404
    assert (await other.post(f"/ui/runs/{ids['run_id']}/cancel")).json() == {"cancelled": False}
    [kept] = store.feedback_for_run(ids["run_id"])
    assert (kept.user, kept.value, kept.retracted_at) == (ann_name, "down", None)


async def test_the_chat_cannot_rate_runs_that_apps_logged(
    browsers: list[httpx.AsyncClient], store: Store, app: FastAPI
) -> None:
    key = KeyService(store).create("default").key
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"authorization": f"Bearer {key}"}
    ) as api:
        logged = await api.post("/api/v1/runs", json=run_body())
    assert logged.status_code == 201, logged.text
    run_id = logged.json()["id"]
    refused = await browsers[0].post(
        f"/ui/runs/{run_id}/feedback", json={"key": "thumbs", "value": "up"}
    )
    assert refused.status_code == 404
    assert store.feedback_for_run(run_id) == []


async def test_a_reviewer_rates_under_their_own_name_beside_the_end_user(
    browsers: list[httpx.AsyncClient], store: Store
) -> None:
    end_user, reviewer = browsers
    ids = await _chat(end_user, "Is the sky green?")
    rated = await end_user.post(
        f"/ui/runs/{ids['run_id']}/feedback", json={"key": "thumbs", "value": "down"}
    )
    assert rated.status_code == 200, rated.text
    add_account(store, "rita", "annotator")
    await sign_in(reviewer, "rita")
    reviewed = await reviewer.post(
        f"/ui/runs/{ids['run_id']}/annotate", json={"key": "thumbs", "value": "up"}
    )
    assert reviewed.status_code == 200, reviewed.text
    current = sorted((f.user, f.source, f.value) for f in store.feedback_for_run(ids["run_id"]))
    assert current == [
        (await identity(end_user), "end_user", "down"),
        ("rita", "annotator", "up"),
    ]


async def test_a_dataset_takes_runs_of_its_own_project_only(
    browsers: list[httpx.AsyncClient], store: Store, app: FastAPI
) -> None:
    key = KeyService(store).create("elsewhere").key
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"authorization": f"Bearer {key}"}
    ) as api:
        foreign = (await api.post("/api/v1/runs", json=run_body())).json()["id"]
    owner = browsers[0]  # on loopback, with no account yet, the owner
    dataset = (await owner.post("/ui/datasets", json={"name": "mine"})).json()
    added = await owner.post(f"/ui/datasets/{dataset['id']}/items", json={"run_ids": [foreign]})
    assert added.status_code == 404
    assert store.dataset_items(dataset["id"]) == []
    page = await owner.get(f"/runs/{foreign}", headers={"accept": "application/json"})
    assert page.status_code == 404


async def test_a_chat_by_invitation_lets_in_only_browsers_that_joined(
    browsers: list[httpx.AsyncClient], store: Store, app: FastAPI
) -> None:
    # Added through the app's own service, which sees it at once (others within 2 s):
    # from now on the pages need accounts, and the chat an invitation.
    app.state.services.accounts.add("olga", role="owner", password="a long enough secret")
    current = store.get_project("default").settings
    FeedbackService(store).configure_project(
        "default", current.model_copy(update={"chat_access": "link"})
    )
    guest, stranger = browsers
    refused = await guest.get("/ui/state")
    assert refused.status_code == 401
    assert "by invitation" in refused.json()["error"]["message"]

    link = Invitations(KeyService(store)).issue("default")
    opened = await guest.get(f"/join/{link}", headers={"accept": "text/html"})
    assert opened.status_code == 200
    assert "Join the chat" in opened.text
    assert PASS_COOKIE not in guest.cookies  # opening the link (a previewer) joins nobody
    joined = await guest.post(f"/join/{link}")
    assert joined.status_code == 303
    assert (await guest.get("/ui/state")).status_code == 200

    # A pass is this browser's own: copied into another, it opens nothing.
    stranger.cookies.set(PASS_COOKIE, guest.cookies[PASS_COOKIE])
    assert (await stranger.get("/ui/state")).status_code == 401
    with pytest.raises(ValidationError):
        Invitations(KeyService(store)).issue("default", expires_in=timedelta(seconds=-1))
    expired = Invitations(KeyService(store)).issue("default", expires_in=timedelta(seconds=1))
    time.sleep(1.1)
    late = await stranger.get(f"/join/{expired}", headers={"accept": "text/html"})
    assert late.status_code == 404
    assert "expired" in late.text
