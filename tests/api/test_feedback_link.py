"""A feedback link opened with GET shows a page and changes nothing; its form records the rating."""

from __future__ import annotations

from html.parser import HTMLParser

from tests.api.conftest import Api, run_body
from tuneback.domain import ContinuousConfig, FeedbackConfigSet


class _Page(HTMLParser):
    """The parts of the page a test reads: the heading, the buttons, the form and the notice."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.h1 = ""
        self.buttons: list[tuple[str, str]] = []
        self.form: dict[str, str] = {}
        self.problem = ""
        self._in: list[str] = []
        self._value = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.form = found
        if tag == "button" and found.get("name") == "value":
            self._value = found["value"]
        if "choice-label" in found.get("class", ""):
            self._in.append("label")
        elif tag in ("h1",) or "link-problem" in found.get("class", ""):
            self._in.append("h1" if tag == "h1" else "problem")

    def handle_endtag(self, tag: str) -> None:
        if self._in and tag in ("h1", "span", "p"):
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if not self._in:
            return
        if self._in[-1] == "label":
            self.buttons.append((self._value, data.strip()))
        elif self._in[-1] == "h1":
            self.h1 += data.strip()
        else:
            self.problem += data.strip()


async def _link(api: Api, key: str = "thumbs") -> tuple[str, str]:
    await api.keyed.post("/api/v1/runs", json=run_body(id="a", output="Four."))
    made = await api.keyed.post("/api/v1/feedback/tokens", json={"run_id": "a", "key": key})
    assert made.status_code == 201, made.text
    return made.json()["url"], made.json()["token"]


async def test_opening_the_link_shows_the_choices_and_records_nothing(api: Api) -> None:
    url, token = await _link(api)
    before = api.store.events_after(0)
    for params in ({}, {"value": "up", "user": "ann"}, {"value": "nonsense", "comment": "hi"}):
        opened = await api.anonymous.get(url, params=params)
        assert opened.status_code == 200
        assert opened.headers["content-type"] == "text/html; charset=utf-8"
    assert api.store.events_after(0) == before
    page = _Page(opened.text)
    assert page.h1 == "How was this answer?"
    assert page.buttons == [("up", "Good"), ("down", "Bad")]
    assert page.form == {
        "class": "link-form",
        "method": "post",
        "action": f"http://tuneback.test/api/v1/feedback/tokens/{token}/form",
    }
    assert "Four." in opened.text


async def test_the_form_records_the_rating_and_thanks(api: Api) -> None:
    url, _token = await _link(api, key="stars")
    page = _Page((await api.anonymous.get(url, params={"value": "4"})).text)
    assert [label for _value, label in page.buttons] == [
        "1 star",
        "2 stars",
        "3 stars",
        "4 stars",
        "5 stars",
    ]
    sent = await api.anonymous.post(
        page.form["action"], data={"value": "4", "comment": "Good enough.", "user": "ann"}
    )
    assert sent.status_code == 201
    assert _Page(sent.text).h1 == "Thank you"
    [rating] = api.store.feedback_for_run("a")
    assert (rating.key, rating.value, rating.score, rating.comment, rating.user) == (
        "stars",
        4,
        0.75,
        "Good enough.",
        "ann",
    )
    assert rating.source == "end_user"


async def test_a_value_the_key_refuses_shows_the_form_again(api: Api) -> None:
    url, _token = await _link(api, key="helpfulness")
    api.store.append(
        FeedbackConfigSet(project="demo", key="helpfulness", config=ContinuousConfig(min=0, max=3))
    )
    page = _Page((await api.anonymous.get(url)).text)
    assert page.buttons == [("0", "0"), ("1", "1"), ("2", "2"), ("3", "3")]
    sent = await api.anonymous.post(f"{url}/form", data={"value": "7"})
    assert sent.status_code == 422
    again = _Page(sent.text)
    assert (again.h1, again.problem) == (
        "How was this answer?",
        "helpfulness must be between 0 and 3, got 7",
    )
    assert api.store.feedback_for_run("a") == []


async def test_a_broken_link_shows_a_page_that_says_so(api: Api) -> None:
    url, _token = await _link(api)
    before = api.store.events_after(0)
    forged = await api.anonymous.get(url + "x")
    assert forged.status_code == 401
    assert _Page(forged.text).h1 == "This rating link does not work"
    assert "The feedback token&#39;s signature does not match." in forged.text
    posted = await api.anonymous.post(url + "x/form", data={"value": "up"})
    assert posted.status_code == 401
    assert _Page(posted.text).h1 == "This rating link does not work"
    assert api.store.events_after(0) == before
