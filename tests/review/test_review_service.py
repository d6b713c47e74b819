"""Review queues on both databases: rules, leases, skips, completion, progress, agreement."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.domain.agreement import cohen_kappa, krippendorff_alpha
from tuneback.errors import ConflictError, ValidationError
from tuneback.services.feedback import FeedbackService
from tuneback.services.review import ReviewService
from tuneback.storage import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand, so leases expire without sleeping."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _run(store: Store, n: int, *, model: str = "echo") -> Run:
    run = Run(
        project="p",
        model=model,
        inputs=[ChatMessage(role="user", content=f"question {n}")],
        output=f"answer {n}",
        created_at=T0 + timedelta(minutes=n),
    )
    store.append(RunCompleted(run=run))
    return run


def _rate(store: Store, run: Run, value: str, **extra: str) -> None:
    FeedbackService(store).record(run_id=run.id, key="thumbs", value=value, user="enduser", **extra)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def reviews(store: Store, clock: FakeClock) -> ReviewService:
    return ReviewService(store, clock=clock)


def test_the_rule_picks_runs_and_new_matches_join_on_their_own(
    store: Store, reviews: ReviewService
) -> None:
    down, up, corrected, unrated = (_run(store, n) for n in range(4))
    _rate(store, down, "down")
    _rate(store, up, "up")
    _rate(store, corrected, "down")
    FeedbackService(store).record(
        run_id=corrected.id, key="correction", correction="Better.", user="enduser"
    )
    queue = reviews.create_queue(
        project="p",
        name="Thumbs-down without a correction",
        keys=["thumbs", "comment", "correction"],
        rule={"key": "thumbs", "max_score": 0, "lacks": "correction"},
    )
    assert queue.rule.describe() == "thumbs-down · without a correction"
    item = reviews.next_item(queue.id, "ann")
    assert item is not None
    assert item.run.id == down.id
    assert [f.value for f in item.context] == ["down"]  # what the user said, as context

    later = _run(store, 10)
    _rate(store, later, "down")
    # Answering with a correction makes the run stop matching; it stays, as reviewed.
    reviews.submit(queue.id, down.id, "ann", answers={"thumbs": "up"}, correction="Fixed.")
    nxt = reviews.next_item(queue.id, "ann")
    assert nxt is not None
    assert nxt.run.id == later.id
    reviews.submit(queue.id, later.id, "ann", answers={"thumbs": "down"}, comment="Wrong.")
    assert reviews.next_item(queue.id, "ann") is None
    counts = reviews.progress(queue.id).counts
    assert (counts.total, counts.pending, counts.completed) == (2, 0, 2)
    assert unrated.id not in {i.run.id for i in reviews.items(queue.id)}

    answers = store.feedback_for_run(down.id)
    mine = sorted((f.key, f.source, f.metadata["queue_id"]) for f in answers if f.user == "ann")
    assert mine == [("correction", "annotator", queue.id), ("thumbs", "annotator", queue.id)]


def test_an_item_is_leased_to_one_reviewer_until_the_lease_runs_out(
    store: Store, reviews: ReviewService, clock: FakeClock
) -> None:
    only = _run(store, 1)
    queue = reviews.create_queue(project="p", name="All", keys=["thumbs"], lease_seconds=60)
    first = reviews.next_item(queue.id, "ann")
    assert first is not None
    assert first.run.id == only.id
    assert first.expires_at == T0 + timedelta(seconds=60)
    again = reviews.next_item(queue.id, "ann")  # a reload serves the same item
    assert again is not None
    assert again.run.id == only.id
    assert reviews.next_item(queue.id, "bob") is None
    assert reviews.progress(queue.id).counts.holding == {"ann": only.id}

    clock.advance(61)
    taken = reviews.next_item(queue.id, "bob")
    assert taken is not None
    assert taken.run.id == only.id
    with pytest.raises(ConflictError, match="bob is reviewing this item now"):
        reviews.submit(queue.id, only.id, "ann", answers={"thumbs": "up"})
    reviews.submit(queue.id, only.id, "bob", answers={"thumbs": "up"})
    with pytest.raises(ConflictError, match="all the reviews it needs"):
        reviews.submit(queue.id, only.id, "ann", answers={"thumbs": "up"})
    with pytest.raises(ConflictError, match="already reviewed"):
        reviews.submit(queue.id, only.id, "bob", answers={"thumbs": "down"})


def test_an_expired_lease_nobody_took_can_still_be_submitted(
    store: Store, reviews: ReviewService, clock: FakeClock
) -> None:
    run = _run(store, 1)
    queue = reviews.create_queue(project="p", name="All", keys=["stars"], lease_seconds=30)
    assert reviews.next_item(queue.id, "ann") is not None
    clock.advance(3600)
    [stored] = reviews.submit(queue.id, run.id, "ann", answers={"stars": 4})
    assert (stored.score, stored.user) == (0.75, "ann")


def test_skipping_frees_the_item_for_others_only(store: Store, reviews: ReviewService) -> None:
    first, second = _run(store, 1), _run(store, 2)
    queue = reviews.create_queue(project="p", name="All", keys=["thumbs"])
    item = reviews.next_item(queue.id, "ann")
    assert item is not None
    assert item.run.id == first.id
    reviews.skip(queue.id, first.id, "ann")
    nxt = reviews.next_item(queue.id, "ann")
    assert nxt is not None
    assert nxt.run.id == second.id
    other = reviews.next_item(queue.id, "bob")
    assert other is not None
    assert other.run.id == first.id
    [ann] = [r for r in reviews.progress(queue.id).reviewers if r.reviewer == "ann"]
    assert (ann.reviewed, ann.skipped, ann.holding) == (0, 1, second.id)


def test_items_need_as_many_reviewers_as_the_queue_asks(
    store: Store, reviews: ReviewService
) -> None:
    a, b, c = (_run(store, n) for n in range(3))
    queue = reviews.create_queue(
        project="p", name="Twice", keys=["thumbs", "correction"], reviewers_per_item=2
    )
    with pytest.raises(ValidationError, match="answer thumbs"):
        reviews.submit(queue.id, a.id, "ann", correction="Only text.")
    with pytest.raises(ValidationError, match="does not ask for stars"):
        reviews.submit(queue.id, a.id, "ann", answers={"thumbs": "up", "stars": 3})
    for reviewer in ("ann", "bob"):
        item = reviews.next_item(queue.id, reviewer)
        assert item is not None
        assert item.run.id == a.id
        reviews.submit(queue.id, a.id, reviewer, answers={"thumbs": "up"})
    item = reviews.next_item(queue.id, "ann")
    assert item is not None
    assert item.run.id == b.id
    reviews.submit(queue.id, b.id, "ann", answers={"thumbs": "down"})
    item = reviews.next_item(queue.id, "bob")
    assert item is not None
    assert item.run.id == b.id
    # Until `b` is complete, ann's answer on it stays hidden from bob.
    assert item.context == []

    statuses = {i.run.id: (i.status, i.reviews) for i in reviews.items(queue.id)}
    assert statuses == {a.id: ("completed", 2), b.id: ("needs_more", 1), c.id: ("pending", 0)}
    progress = reviews.progress(queue.id)
    counts = progress.counts
    assert (counts.total, counts.pending, counts.needs_more, counts.completed) == (3, 1, 1, 1)
    assert [(r.reviewer, r.reviewed, r.holding) for r in progress.reviewers] == [
        ("ann", 2, None),
        ("bob", 1, b.id),
    ]
    visible = reviews.visible_answers(queue, reviews.items(queue.id))
    assert set(visible) == {a.id}
    assert sorted((f.user, f.value) for f in visible[a.id]) == [("ann", "up"), ("bob", "up")]


def test_two_reviewers_at_once_never_get_the_same_item(
    store: Store, reviews: ReviewService
) -> None:
    runs = [_run(store, n) for n in range(24)]
    queue = reviews.create_queue(project="p", name="All", keys=["thumbs"])
    served: dict[str, list[str]] = {}
    failures: list[BaseException] = []

    def work(name: str) -> None:
        mine = served.setdefault(name, [])
        try:
            while (item := reviews.next_item(queue.id, name)) is not None:
                mine.append(item.run.id)
                reviews.submit(queue.id, item.run.id, name, answers={"thumbs": "up"})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    everything = [run_id for ids in served.values() for run_id in ids]
    assert sorted(everything) == sorted(r.id for r in runs)  # each once, none twice
    recorded = [
        e.payload.feedback.run_id  # type: ignore[attr-defined]
        for e in store.events_after(0, limit=10_000, types=["feedback.recorded"])
    ]
    assert sorted(recorded) == sorted(r.id for r in runs)


def test_agreement_per_key_matches_the_formulas(store: Store, reviews: ReviewService) -> None:
    runs = [_run(store, n) for n in range(4)]
    queue = reviews.create_queue(
        project="p", name="Agree", keys=["thumbs", "stars"], reviewers_per_item=2
    )
    given = {
        "ann": [("up", 5), ("up", 4), ("down", 1), ("up", 3)],
        "bob": [("up", 5), ("down", 2), ("down", 1)],
    }
    for reviewer, answers in given.items():
        for run, (thumbs, stars) in zip(runs, answers, strict=False):
            reviews.submit(queue.id, run.id, reviewer, answers={"thumbs": thumbs, "stars": stars})
    thumbs, stars = reviews.agreement(queue.id)
    # Only the three items both rated count; thumbs are categories, stars ranks.
    pairs = [("up", "up"), ("up", "down"), ("down", "down")]
    assert (thumbs.key, thumbs.level, thumbs.items) == ("thumbs", "nominal", 3)
    assert thumbs.reviewers == ["ann", "bob"]
    assert thumbs.kappa == pytest.approx(cohen_kappa(pairs)) == pytest.approx(0.4)
    assert thumbs.alpha == pytest.approx(krippendorff_alpha(pairs)) == pytest.approx(4 / 9)
    assert (stars.key, stars.level) == ("stars", "ordinal")
    # Stars are ranks. Scores 0 (x2), .25, .75, 1 (x2); n = 6; only (.25, .75) disagree:
    # D_o = 2*(2 - 1)^2/6 = 1/3; D_e = (9 + 25 + 128 + 2 + 25 + 9)/30 = 6.6; alpha = 94/99.
    assert stars.alpha == pytest.approx(94 / 99)


def test_queues_are_projections_that_survive_a_rebuild(
    store: Store, reviews: ReviewService
) -> None:
    run = _run(store, 1)
    queue = reviews.create_queue(project="p", name="All", keys=["thumbs"])
    reviews.submit(queue.id, run.id, "ann", answers={"thumbs": "up"})
    before = (reviews.get(queue.id), reviews.progress(queue.id).counts)
    store.rebuild()
    assert (reviews.get(queue.id), reviews.progress(queue.id).counts) == before
