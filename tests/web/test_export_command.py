"""The runs explorer's copy-paste ``tuneback export`` line survives hostile filter values."""

from __future__ import annotations

import shlex
from html.parser import HTMLParser

import httpx

from tuneback.config import Settings
from tuneback.domain import ChatMessage, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.models import ScriptedModel
from tuneback.server import create_app
from tuneback.server.web.runs import ExplorerQuery, _export_command
from tuneback.storage import Store


class _ExportCommand(HTMLParser):
    """The text of the page's ``<pre class="... export-command">``."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "pre" and "export-command" in classes:
            self.inside = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text += data


async def test_hostile_filters_stay_single_arguments(store: Store) -> None:
    app = create_app(
        Settings(database_url=str(store.url), auth=False), store=store, models=[ScriptedModel()]
    )
    store.append_many(
        [
            RunCompleted(
                run=Run(
                    id="r1",
                    project="default",
                    model="gpt $(touch pwned)",
                    inputs=[ChatMessage(role="user", content="hi")],
                    output="hello",
                )
            ),
            FeedbackRecorded(
                feedback=Feedback(
                    id="f1", project="default", run_id="r1", key="stars", value=5, score=1.0
                )
            ),
        ]
    )
    hostile = {
        "model": "gpt $(touch pwned)",
        "key": "stars",
        "min_score": "0.5",
        "since": "2026-03-01T12:00:00+00:00",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/runs", params=hostile)
    assert response.status_code == 200
    parser = _ExportCommand()
    parser.feed(response.text)
    assert shlex.split(parser.text) == [
        "tuneback",
        "export",
        "runs",
        "--output",
        "data/",
        "--project",
        "default",
        "--model",
        "gpt $(touch pwned)",
        "--since",
        "2026-03-01T12:00:00+00:00",
        "--key",
        "stars",
        "--min-score",
        "0.5",
    ]


def test_every_argument_is_quoted() -> None:
    hostile = 'x\'; rm -rf ~; echo "$HOME" `id` && true'
    query = ExplorerQuery(model=hostile, key=hostile, max_score=0.25)
    command = _export_command("demo", query)
    assert shlex.split(command) == [
        "tuneback",
        "export",
        "runs",
        "--output",
        "data/",
        "--project",
        "demo",
        "--model",
        hostile,
        "--key",
        hostile,
        "--max-score",
        "0.25",
    ]
