"""The compare page in a real browser: battles between two scripted models, votes, re-votes.

Every assertion on what was recorded reads the comparison events from the store
and compares whole payloads, with ids and times replaced by stable names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.visitors import page_identity
from tests.web.conftest import LiveServer, serving
from tuneback.models import ScriptedModel
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store

SHOTS = "/tmp/shots"


@pytest.fixture
def red() -> ScriptedModel:
    return ScriptedModel(spec="scripted:red", name="Red")


@pytest.fixture
def blue() -> ScriptedModel:
    return ScriptedModel(spec="scripted:blue", name="Blue")


@pytest.fixture
def arena(store: Store, red: ScriptedModel, blue: ScriptedModel) -> Iterator[LiveServer]:
    with serving(store, ModelCatalog([red, blue])) as url:
        yield LiveServer(url, store, red)


def _payloads(server: LiveServer, type_: str) -> list[Any]:
    return [e.payload for e in server.store.events_after(0, limit=10_000, types=[type_])]


def _comparisons(server: LiveServer) -> list[dict[str, Any]]:
    """Every comparison event, ids and times named: runs by their model, comparisons by order."""
    runs = {p.run.id: p.run for p in _payloads(server, "run.completed")}
    runs.update({p.run.id: p.run for p in _payloads(server, "run.failed")})
    comparisons = [p.comparison for p in _payloads(server, "comparison.recorded")]
    names: dict[str, str] = {}
    for i, comparison in enumerate(comparisons):
        names[comparison.id] = f"vote-{i + 1}"
    rounds: dict[str, str] = {}
    for run in sorted(runs.values(), key=lambda r: r.id):
        round_id = run.metadata["battle_round"]
        rounds.setdefault(round_id, f"round-{len(rounds) + 1}")
        names[run.id] = f"{rounds[round_id]}/{run.model}/{run.metadata['battle_side']}"
    out = []
    for comparison in comparisons:
        data = comparison.model_dump(mode="json")
        data["id"] = names[data["id"]]
        data["created_at"] = "<time>"
        data["supersedes"] = names.get(data["supersedes"], data["supersedes"])
        data["candidates"] = [{**c, "run_id": names[c["run_id"]]} for c in data["candidates"]]
        if data["ranking"]:
            data["ranking"] = [names[r] for r in data["ranking"]]
        data["metadata"] = {
            "round_id": rounds[data["metadata"]["round_id"]],
            "conversation_id": "<conversation>",
        }
        out.append(data)
    return out


def _ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.keyboard.press("Enter")
    expect(page.locator("#vote")).to_be_visible()


def _side_names(page: Page) -> list[str]:
    return page.locator(".side-name").all_inner_texts()


def test_an_anonymous_battle_votes_each_way_and_revotes(
    page: Page, arena: LiveServer, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue(chunks=["Crimson, ", "like a **rose**."], delay=0.2)
    blue.enqueue(chunks=["Navy ", "blue."], delay=0.2)
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(f"{arena.url}/compare")
    _ask(page, "Name a colour.")
    expect(page.locator(".side-meta")).to_have_count(2)
    # The names stay hidden until the vote.
    assert _side_names(page) == ["Model A", "Model B"]
    page.screenshot(path=f"{SHOTS}/compare-before-vote.png", full_page=True)
    red_side = "A" if "Crimson" in page.locator(".side-body").first.inner_text() else "B"
    blue_side = "B" if red_side == "A" else "A"
    models = {red_side: "scripted:red", blue_side: "scripted:blue"}

    for outcome, button in [
        ("a", "A is better"),
        ("b", "B is better"),
        ("tie", "Tie"),
        ("both_bad", "Both are bad"),
    ]:
        page.get_by_role("button", name=button).click()
        expect(page.locator("#vote-status")).to_contain_text("Vote again to change it")
        expect(page.locator(f".vote-btn[data-outcome='{outcome}']")).to_have_attribute(
            "aria-pressed", "true"
        )
    assert _side_names(page) == [f"A · {models['A']}", f"B · {models['B']}"]
    page.screenshot(path=f"{SHOTS}/compare-after-vote.png", full_page=True)

    user = page_identity(page)
    candidates = [
        {"run_id": f"round-1/{models[label]}/{i}", "model": models[label]}
        for i, label in enumerate("AB")
    ]
    expected = [
        {
            "id": f"vote-{n}",
            "project": "web",
            "prompt": [{"role": "user", "content": "Name a colour."}],
            "candidates": candidates,
            "outcome": outcome,
            "ranking": None,
            "user": user,
            "comment": None,
            "mode": "anonymous",
            "supersedes": f"vote-{n - 1}" if n > 1 else None,
            "metadata": {"round_id": "round-1", "conversation_id": "<conversation>"},
            "created_at": "<time>",
        }
        for n, outcome in enumerate(["a", "b", "tie", "both_bad"], start=1)
    ]
    assert _comparisons(arena) == expected

    # Continue with the chosen side: both models answer the follow-up on its history.
    page.get_by_role("button", name="A is better").click()
    expect(page.locator(".side.chosen")).to_have_attribute("data-side", "A")
    red.enqueue("Scarlet.")
    blue.enqueue("Teal.")
    page.fill("#follow-prompt", "Another one?")
    page.locator("#follow-up button[type=submit]").click()
    expect(page.locator("#vote-status")).to_have_text("Which answer is better?")
    page.locator("summary").click()
    page.fill("#vote-comment", "B was shorter")
    page.fill("#vote-ideal", "Vermilion.")
    page.get_by_role("button", name="B is better").click()
    expect(page.locator("#vote-status")).to_contain_text("Your vote: B is better")

    chosen_a = "Crimson, like a **rose**." if models["A"] == "scripted:red" else "Navy blue."
    assert [m.content for m in red.calls[1].messages] == [
        "Name a colour.",
        chosen_a,
        "Another one?",
    ]
    last = _comparisons(arena)[-1]
    assert last == {
        "id": "vote-6",
        "project": "web",
        "prompt": [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": chosen_a},
            {"role": "user", "content": "Another one?"},
        ],
        "candidates": [
            {"run_id": f"round-2/{models[label]}/{i}", "model": models[label]}
            for i, label in enumerate("AB")
        ],
        "outcome": "b",
        "ranking": None,
        "user": user,
        "comment": "B was shorter",
        "mode": "anonymous",
        "supersedes": None,
        "metadata": {"round_id": "round-2", "conversation_id": "<conversation>"},
        "created_at": "<time>",
    }
    [correction] = [p.feedback for p in _payloads(arena, "feedback.recorded")]
    b_run = last["candidates"][1]["run_id"]
    runs = {p.run.id: p.run for p in _payloads(arena, "run.completed")}
    assert (
        correction.kind,
        correction.correction,
        correction.user,
        runs[correction.run_id].model,
    ) == (
        "correction",
        "Vermilion.",
        user,
        b_run.split("/")[1],
    )


def test_ranking_three_answers_of_one_model(
    page: Page, arena: LiveServer, red: ScriptedModel
) -> None:
    for reply in ("one", "two", "three"):
        red.enqueue(reply)
    page.goto(f"{arena.url}/compare")
    page.get_by_label("One model").check()
    page.select_option("#sides", "3")
    _ask(page, "Count.")
    expect(page.locator(".rank-item")).to_have_count(3)
    page.get_by_role("button", name="Move C up").click()
    page.get_by_role("button", name="Move C up").click()
    assert page.locator(".rank-item").evaluate_all("items => items.map(i => i.dataset.label)") == [
        "C",
        "A",
        "B",
    ]
    page.screenshot(path=f"{SHOTS}/compare-ranking.png", full_page=True)
    page.get_by_role("button", name="Submit ranking").click()
    expect(page.locator("#vote-status")).to_contain_text("Your ranking: C > A > B")
    [comparison] = _comparisons(arena)
    sides = [f"round-1/scripted:red/{i}" for i in range(3)]
    assert comparison == {
        "id": "vote-1",
        "project": "web",
        "prompt": [{"role": "user", "content": "Count."}],
        "candidates": [{"run_id": s, "model": "scripted:red"} for s in sides],
        "outcome": None,
        "ranking": [sides[2], sides[0], sides[1]],
        "user": page_identity(page),
        "comment": None,
        "mode": "resample",
        "supersedes": None,
        "metadata": {"round_id": "round-1", "conversation_id": "<conversation>"},
        "created_at": "<time>",
    }


def test_a_failing_side_and_the_stop_button(
    page: Page, arena: LiveServer, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("half an answer", error_after=1)
    blue.enqueue("fine")
    page.goto(f"{arena.url}/compare")
    page.get_by_label("Named").check()
    _ask(page, "Hi")
    expect(page.locator(".side.failed .error-box")).to_have_text("scripted failure after 1 chunks")
    [failed] = [p.run for p in _payloads(arena, "run.failed")]
    assert (failed.model, failed.status, failed.output) == ("scripted:red", "error", "half ")

    red.enqueue("one two three four five six seven eight", delay=0.3)
    blue.enqueue("nine ten eleven twelve thirteen fourteen", delay=0.3)
    page.fill("#prompt", "Count slowly")
    page.keyboard.press("Enter")
    expect(page.locator(".side-body.cursor")).to_have_count(2)
    page.locator("#stop").click()
    expect(page.locator(".cancelled-note")).to_have_count(2)
    cancelled = [p.run for p in _payloads(arena, "run.failed") if p.run.status == "cancelled"]
    assert sorted(r.model for r in cancelled) == ["scripted:blue", "scripted:red"]
    assert all(len(r.output.split()) < 8 for r in cancelled)


@pytest.mark.parametrize(
    ("name", "width", "height", "scheme"),
    [
        ("desktop-light", 1280, 860, "light"),
        ("desktop-dark", 1280, 860, "dark"),
        ("phone-light", 390, 844, "light"),
        ("phone-dark", 390, 844, "dark"),
    ],
)
def test_compare_fits_every_screen(
    browser: Browser,
    arena: LiveServer,
    red: ScriptedModel,
    blue: ScriptedModel,
    name: str,
    width: int,
    height: int,
    scheme: str,
) -> None:
    red.enqueue("A long answer about colours " * 8)
    blue.enqueue("Blue.")
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    try:
        page.goto(f"{arena.url}/compare")
        _ask(page, "Name a colour.")
        page.get_by_role("button", name="Tie").click()
        expect(page.locator("#vote-status")).to_contain_text("Your vote: a tie")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=f"{SHOTS}/compare-{name}.png", full_page=True)
    finally:
        context.close()


def test_the_chat_offers_to_compare_an_answer_with_another_model(
    page: Page, arena: LiveServer, red: ScriptedModel, blue: ScriptedModel
) -> None:
    red.enqueue("Red.")
    page.goto(f"{arena.url}/")
    expect(page.get_by_role("link", name="Compare models")).to_have_attribute("href", "/compare")
    page.fill("#prompt", "Name a colour.")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Compare with another model").click()
    page.wait_for_url("**/compare?**")
    expect(page.locator("#prompt")).to_have_value("Name a colour.")
    expect(page.get_by_label("Named")).to_be_checked()
    picked = [page.locator(f"select[name='model-{label}']").input_value() for label in "AB"]
    assert picked == ["scripted:red", "scripted:blue"]
    red.enqueue("Crimson.")
    blue.enqueue("Navy.")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#vote")).to_be_visible()
    assert _side_names(page) == ["A · scripted:red", "B · scripted:blue"]
    # Battles stay off the chat's list: there they would name an anonymous battle's models.
    listed = page.request.get(f"{arena.url}/ui/conversations").json()
    assert [item["title"] for item in listed] == ["Name a colour."]
    battle = next(
        p.conversation
        for p in _payloads(arena, "conversation.started")
        if "battle" in p.conversation.tags
    )
    run_id = next(
        p.run.id for p in _payloads(arena, "run.completed") if p.run.conversation_id == battle.id
    )
    hidden = [
        page.request.get(f"{arena.url}{path}").status
        for path in (f"/c/{battle.id}", f"/ui/conversations/{battle.id}", f"/ui/runs/{run_id}")
    ]
    assert hidden == [404, 404, 404]


def test_a_server_with_one_model_samples_it_twice(page: Page, store: Store) -> None:
    only = ScriptedModel(spec="scripted:only")
    only.enqueue("First try.")
    only.enqueue("Second try.")
    with serving(store, ModelCatalog([only])) as url:
        page.goto(f"{url}/compare?prompt=Hello&model=scripted:only")
        expect(page.get_by_label("One model")).to_be_checked()
        expect(page.get_by_label("Anonymous")).to_be_disabled()
        page.get_by_role("button", name="Ask").click()
        expect(page.locator("#vote")).to_be_visible()
        assert _side_names(page) == ["A · scripted:only", "B · scripted:only"]
        assert sorted(page.locator(".side-body").all_inner_texts()) == ["First try.", "Second try."]
