"""Rollups equal a recount and answer every dashboard query as the raw tables do."""

from __future__ import annotations

import random
import statistics
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.analytics.seed import MODELS, START, Seeded, seed
from tests.storage.snapshot import projection_snapshot, table_rows
from tuneback.domain import (
    ChatMessage,
    Conversation,
    ConversationRenamed,
    ConversationStarted,
    Feedback,
    FeedbackRecorded,
    FeedbackRetracted,
    Run,
    RunCompleted,
    RunFailed,
)
from tuneback.domain.stats import RELATIVE_ERROR, bucket_of, bucket_value, histogram_percentiles
from tuneback.storage import Store, migrate, rollup_windows, rollups
from tuneback.storage import tables as t
from tuneback.storage.analytics import Analytics, Window


def _rollup_rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    return table_rows(store, t.ROLLUPS)


def _recounted(store: Store) -> dict[str, list[dict[str, Any]]]:
    with store.engine.begin() as conn:
        rollups.rebuild(conn)
    return _rollup_rows(store)


def _answers(store: Store, window: Window, *, from_rollups: bool) -> dict[str, Any]:
    analytics = Analytics(store, rollups=from_rollups)
    return {
        "summary": analytics.summary(window),
        "by day": analytics.over_time(window, "day"),
        "by hour": analytics.over_time(window, "hour"),
        "by model": sorted(analytics.split(window, "model"), key=lambda r: str(r["group"])),
        "keys": sorted(analytics.keys(window), key=lambda r: str(r["key"])),
        **{
            f"ratings by {by}": sorted(analytics.ratings(window, by), key=lambda r: str(r["group"]))
            for by in ("model", "user", "system_prompt", "tag")
        },
    }


def _same(rolled: Any, raw: Any, where: str = "") -> None:
    """Equal, except percentiles within the histograms' stated error and means to 1e-9."""
    if isinstance(raw, dict):
        assert set(rolled) == set(raw), where
        for key in raw:
            _same(rolled[key], raw[key], f"{where}.{key}")
    elif isinstance(raw, list):
        assert len(rolled) == len(raw), where
        for n, (a, b) in enumerate(zip(rolled, raw, strict=True)):
            _same(a, b, f"{where}[{n}]")
    elif isinstance(raw, float) and isinstance(rolled, float | int):
        percentile = "_p" in where.rsplit(".", 1)[-1]
        allowed = RELATIVE_ERROR * abs(raw) if percentile else 1e-9
        assert abs(rolled - raw) <= allowed + 1e-9, (where, rolled, raw)
    else:
        assert rolled == raw, (where, rolled, raw)


def _windows() -> list[Window]:
    ragged = START + timedelta(days=1, hours=3, minutes=17)
    return [
        Window("seeded"),
        Window("seeded", model="beta"),
        Window("seeded", since=START + timedelta(days=1), until=START + timedelta(days=3)),
        Window("seeded", since=ragged, until=ragged + timedelta(days=1, hours=5, minutes=3)),
        Window("seeded", since=ragged, model="alpha"),
        Window("seeded", until=ragged),
        Window("seeded", since=ragged, until=ragged + timedelta(minutes=40)),
        Window("seeded", since=START + timedelta(hours=5), until=START + timedelta(hours=9)),
    ]


def _assert_answers_agree(store: Store) -> None:
    for window in _windows():
        _same(
            _answers(store, window, from_rollups=True),
            _answers(store, window, from_rollups=False),
            repr(window),
        )


def _retract_some(store: Store, seeded: Seeded, every: int = 5) -> None:
    current = seeded.current_feedback()
    store.append_many(
        FeedbackRetracted(project="seeded", feedback_id=fb.id, user=fb.user)
        for fb in current[::every]
    )


def test_every_answer_from_rollups_equals_the_raw_answer(store: Store) -> None:
    seeded = seed(store)
    _assert_answers_agree(store)
    _retract_some(store, seeded)
    _assert_answers_agree(store)
    store.forget_user("bob", project="seeded")
    _assert_answers_agree(store)
    assert _rollup_rows(store) == _recounted(store)


def test_kept_rollups_equal_a_recount_after_every_kind_of_change(store: Store) -> None:
    seeded = seed(store, runs=300)
    _retract_some(store, seeded, every=3)
    # Feedback that arrives before its run, and a run logged before its conversation.
    late_conversation = Conversation(
        project="seeded", user="eve", system_prompt="Late.", started_at=START
    )
    run = Run(
        project="seeded",
        conversation_id=late_conversation.id,
        user="eve",
        model="alpha",
        inputs=[ChatMessage(role="system", content="Sent."), ChatMessage(role="user", content="x")],
        latency_ms=0.0,
        created_at=START + timedelta(hours=2, minutes=30),
    )
    early = Feedback(project="seeded", run_id=run.id, key="thumbs", value="up", score=1, user="eve")
    store.append(FeedbackRecorded(feedback=early))
    store.append(RunCompleted(run=run))
    again = Feedback(
        project="seeded", run_id=run.id, key="thumbs", value="down", score=0, user="eve"
    )
    store.append_many(
        [FeedbackRecorded(feedback=again), ConversationStarted(conversation=late_conversation)]
    )
    assert _rollup_rows(store) == _recounted(store)
    _assert_answers_agree(store)
    store.forget_user("ann")
    kept = _rollup_rows(store)
    assert kept == _recounted(store)
    store.rebuild()
    assert _rollup_rows(store) == kept


def test_new_runs_are_counted_from_their_rows_as_a_recount_reads_them(store: Store) -> None:
    # New runs are tallied from the rows written, not read back: each way a run
    # finds its system prompt, and the runs whose conversation was stored before.
    stored = Conversation(project="rows", system_prompt="Stored earlier.", started_at=START)
    store.append(ConversationStarted(conversation=stored))
    with_prompt = Conversation(project="rows", system_prompt="In the batch.", started_at=START)
    without_prompt = Conversation(project="rows", started_at=START)
    system = ChatMessage(role="system", content="Sent by the app.")
    question = ChatMessage(role="user", content="Why?")

    def run(n: int, **fields: Any) -> RunCompleted | RunFailed:
        made = Run(
            project="rows",
            model=MODELS[n % 3],
            user=f"u{n % 2}",
            tags=["a", "b"][: n % 3],
            latency_ms=10.0 * n,
            ttft_ms=None if n % 2 else 1.5 * n,
            prompt_tokens=n,
            completion_tokens=2 * n,
            created_at=START + timedelta(minutes=47 * n),
            **fields,
        )
        return RunCompleted(run=made) if made.status == "ok" else RunFailed(run=made)

    batch = [
        ConversationStarted(conversation=with_prompt),
        ConversationStarted(conversation=without_prompt),
        run(1, conversation_id=with_prompt.id, inputs=[system, question]),
        run(2, conversation_id=without_prompt.id, inputs=[system, question]),
        run(3, conversation_id=without_prompt.id, inputs=[question]),
        run(4, conversation_id=stored.id, inputs=[system, question]),
        run(5, conversation_id="never-started", inputs=[system]),
        run(6, inputs=[system, question], started_at=START - timedelta(days=1)),
        run(7, inputs={"question": "Why?"}, status="error", error="boom"),
        run(8, inputs=[]),
    ]
    store.append_many(batch)
    assert _rollup_rows(store) == _recounted(store)
    prompts = {
        row["label"]
        for row in _rollup_rows(store)["rollups"]
        if row["dim"] == "prompt" and row["label"]
    }
    assert prompts == {"In the batch.", "Sent by the app.", "Stored earlier."}


def _two_each(write: Callable[[Store, int], None], first: Store, second: Store) -> None:
    """Run ``write`` in four threads at once, two on each store (each a process of its own)."""
    threads = [
        threading.Thread(target=write, args=(store, n))
        for n, store in enumerate((first, second, first, second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _vote(rng: random.Random, run: Run, users: list[str | None]) -> FeedbackRecorded:
    key, kind = rng.choice([("thumbs", "explicit"), ("stars", "explicit"), ("copied", "implicit")])
    score = rng.choice([0.0, 0.25, 1.0, None]) if key != "thumbs" else float(rng.randrange(2))
    return FeedbackRecorded(
        feedback=Feedback(
            project="votes",
            run_id=run.id,
            key=key,
            kind=kind,
            value=None if score is None else str(score),
            score=score,
            user=rng.choice(users),
        )
    )


def test_rollups_follow_people_changing_their_votes(store: Store) -> None:
    # A rating's rollups are changed by its own numbers and those of the rating
    # it replaces: re-votes one by one, several in one batch, on runs that
    # already have many ratings, anonymous ones that replace nothing.
    rng = random.Random(7)
    runs = [
        Run(project="votes", model=MODELS[n % 3], user="u", inputs=[], tags=["t"], created_at=START)
        for n in range(6)
    ]
    store.append_many(RunCompleted(run=run) for run in runs)
    users: list[str | None] = ["ann", "bob", "cyd", None]
    for _ in range(60):
        store.append(_vote(rng, rng.choice(runs), users))
    for _ in range(15):
        store.append_many(
            _vote(rng, rng.choice(runs[:2]), users) for _ in range(rng.randrange(1, 6))
        )
    assert _rollup_rows(store) == _recounted(store)
    summary = Analytics(store).summary(Window("votes"))
    assert summary["runs"] == 6
    assert summary["feedback"] == len(store.feedback_for_runs([run.id for run in runs]))


def test_a_retraction_in_a_batch_ends_as_it_would_alone(store: Store) -> None:
    # Replayed, the log below is one batch: retractions wait in it beside the
    # runs, ratings and conversations they touch. Every case must end as it did
    # when each event was written alone.
    asked = [ChatMessage(role="user", content="x")]

    def answer(conversation: Conversation | None = None) -> Run:
        return Run(
            project="seeded",
            conversation_id=conversation.id if conversation else None,
            model="alpha",
            user="u",
            inputs=asked,
            latency_ms=5.0,
            created_at=START,
        )

    def rate(user: str, run: Run | None = None, talk: Conversation | None = None) -> Feedback:
        return Feedback(
            project="seeded",
            run_id=run.id if run else None,
            conversation_id=talk.id if talk else None,
            key="thumbs",
            value="up",
            score=1.0,
            user=user,
        )

    talk, aside, late = (
        Conversation(project="seeded", user=user, system_prompt="Be brief.", started_at=START)
        for user in ("dee", "fay", "eve")
    )
    quiet, changed, undone, moved, fresh = answer(), answer(), answer(), answer(late), answer()
    on_quiet, on_changed, on_moved = rate("ann", quiet), rate("bob", changed), rate("eve", moved)
    unlogged = answer()
    on_undone, before_its_run = rate("ida", undone), rate("jo", unlogged)
    on_talk, on_aside = rate("dee", talk=talk), rate("fay", talk=aside)
    again, in_batch = rate("bob", changed), rate("gus", fresh)

    def retract(feedback: Feedback) -> FeedbackRetracted:
        return FeedbackRetracted(project="seeded", feedback_id=feedback.id, user=feedback.user)

    log = [
        ConversationStarted(conversation=talk),
        ConversationStarted(conversation=aside),
        *(RunCompleted(run=run) for run in (quiet, changed, undone, moved)),
        *(FeedbackRecorded(feedback=fb) for fb in (on_quiet, on_changed, on_undone, on_moved)),
        *(FeedbackRecorded(feedback=fb) for fb in (on_talk, on_aside, before_its_run)),
        # Renaming updates a stored row, so the batch is written here.
        ConversationRenamed(project="seeded", conversation_id=talk.id, title="Written"),
        RunCompleted(run=fresh),
        FeedbackRecorded(feedback=rate("cyd", fresh)),
        retract(on_quiet),  # nothing else waits on its run
        RunCompleted(run=unlogged),
        retract(before_its_run),  # its run is new here: counted once, when it goes in
        retract(on_undone),
        FeedbackRecorded(feedback=rate("ida", undone)),  # rated again: replaces nothing
        FeedbackRecorded(feedback=again),
        retract(on_changed),  # replaced by the re-rating before it, then retracted
        FeedbackRecorded(feedback=in_batch),
        retract(in_batch),  # the rating itself is waiting
        ConversationStarted(conversation=late),
        retract(on_moved),  # its run moves to the conversation's prompt in this batch
        FeedbackRecorded(feedback=rate("dee", talk=talk)),
        retract(on_talk),  # a rating of a conversation, replaced first
        retract(on_aside),
        FeedbackRecorded(feedback=rate("ann", quiet)),
    ]
    for event in log:
        store.append(event)
    alone = projection_snapshot(store)
    counted = _rollup_rows(store)
    assert counted == _recounted(store)
    history = {fb.id: fb for fb in store.feedback_for_run(changed.id, history=True)}
    assert history[on_changed.id].superseded_by == again.id
    assert history[on_changed.id].retracted_at is not None
    for run in (quiet, undone):  # a retracted rating is not replaced by the next one
        replaced = [fb.superseded_by for fb in store.feedback_for_run(run.id, history=True)]
        assert replaced == [None, None]

    assert store.rebuild() == len(log)
    assert projection_snapshot(store) == alone
    assert _rollup_rows(store) == counted


def test_concurrent_re_votes_on_one_run_count_it_rated_once(database_url: str) -> None:
    # Two processes rating the same runs at once: whether a run is rated at
    # all depends on its other ratings, so it is counted under the run's lock.
    with Store(database_url) as first, Store(database_url) as second:
        runs = [Run(project="votes", model="alpha", inputs=[], created_at=START) for _ in range(3)]
        first.append_many(RunCompleted(run=run) for run in runs)

        def write(store: Store, seed_value: int) -> None:
            rng = random.Random(seed_value)
            for _ in range(25):
                store.append(_vote(rng, rng.choice(runs), ["ann", "bob", None]))

        _two_each(write, first, second)
        assert _rollup_rows(first) == _recounted(first)


def test_concurrent_retractions_and_ratings_of_one_run_count_it_rated_once(
    database_url: str,
) -> None:
    # A retraction can leave a run unrated while another process rates it: the
    # two must not both decide from what they saw before the other committed.
    with Store(database_url) as first, Store(database_url) as second:
        runs = [Run(project="votes", model="alpha", inputs=[], created_at=START) for _ in range(2)]
        first.append_many(RunCompleted(run=run) for run in runs)

        def write(store: Store, seed_value: int) -> None:
            rng = random.Random(seed_value)
            mine: list[Feedback] = []
            for _ in range(40):
                if mine and rng.random() < 0.5:
                    gone = mine.pop(rng.randrange(len(mine)))
                    store.append(
                        FeedbackRetracted(project="votes", feedback_id=gone.id, user=gone.user)
                    )
                else:
                    vote = _vote(rng, rng.choice(runs), [None])
                    store.append(vote)
                    mine.append(vote.feedback)

        _two_each(write, first, second)
        assert _rollup_rows(first) == _recounted(first)


def test_forgetting_everyone_leaves_no_rollup_rows(store: Store) -> None:
    seed(store, runs=80)
    for user in ("ann", "bob", "cyd", "dee"):
        store.forget_user(user, project="seeded")
    assert _rollup_rows(store) == {table.name: [] for table in t.ROLLUPS}


def test_the_migration_counts_what_was_stored_before_it(store: Store) -> None:
    seeded = seed(store, runs=200)
    _retract_some(store, seeded)
    kept = _rollup_rows(store)
    migrate.downgrade(store.engine, "0011")
    migrate.upgrade(store.engine)
    assert _rollup_rows(store) == kept


def test_the_all_time_user_rows_are_summed_from_the_days_before_them(store: Store) -> None:
    seeded = seed(store)  # three days: each user's all-time rows sum several days
    _retract_some(store, seeded)
    kept = _rollup_rows(store)["rollups"]
    every_day = [r for r in kept if (r["dim"], r["grain"]) == ("user", "d")]
    all_time = [r for r in kept if r["grain"] == rollups.ALL_TIME]
    assert len({r["period"] for r in every_day}) == 3
    assert {(r["model"], r["value"]): r["runs"] for r in all_time} == {
        key: sum(r["runs"] for r in every_day if (r["model"], r["value"]) == key)
        for key in {(r["model"], r["value"]) for r in every_day}
    }
    migrate.downgrade(store.engine, "0017")
    assert not [r for r in _rollup_rows(store)["rollups"] if r["grain"] == rollups.ALL_TIME]
    migrate.upgrade(store.engine)
    assert _rollup_rows(store)["rollups"] == kept


def test_concurrent_writers_lose_no_increment(database_url: str) -> None:
    # Two stores are two processes: each has its own writer and connections.
    with Store(database_url) as first, Store(database_url) as second:
        moment = START + timedelta(minutes=5)

        def write(store: Store, seed_value: int) -> None:
            rng = random.Random(seed_value)
            for _ in range(15):
                runs = [
                    Run(
                        project="busy",
                        model=MODELS[rng.randrange(3)],
                        user="u",
                        inputs=[],
                        latency_ms=rng.uniform(10, 900),
                        tags=["same"],
                        created_at=moment,
                    )
                    for _ in range(4)
                ]
                store.append_many([RunCompleted(run=run) for run in runs])
                store.append_many(
                    FeedbackRecorded(
                        feedback=Feedback(
                            project="busy", run_id=run.id, key="thumbs", value="up", score=1
                        )
                    )
                    for run in runs
                )

        _two_each(write, first, second)
        summary = Analytics(first).summary(Window("busy"))
        assert (summary["runs"], summary["feedback"], summary["thumbs"]) == (240, 240, 240)
        assert _rollup_rows(first) == _recounted(first)


def test_histogram_percentiles_are_within_the_stated_error() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(5, 1.2) for _ in range(5_000)] + [0.0, 0.4]
    histogram: dict[str, int] = {}
    for value in values:
        histogram[bucket_of(value)] = histogram.get(bucket_of(value), 0) + 1
    fractions = (0.01, 0.25, 0.5, 0.9, 0.99, 0.999)
    exact = statistics.quantiles(values, n=1000, method="inclusive")
    for fraction, got in zip(fractions, histogram_percentiles(histogram, fractions), strict=True):
        want = exact[round(fraction * 1000) - 1]
        assert got is not None
        assert abs(got - want) <= RELATIVE_ERROR * want, fraction
    assert RELATIVE_ERROR < 0.02
    for value in (0.001, 1.0, 37.5, 12_345.0):
        assert abs(bucket_value(bucket_of(value)) - value) <= RELATIVE_ERROR * value
    assert histogram_percentiles({}, (0.5,)) == [None]


@pytest.mark.parametrize(
    ("since", "until", "finest", "expected"),
    [
        (None, None, "d", [("d", None, None)]),
        (
            START + timedelta(hours=1, minutes=30),
            START + timedelta(days=2, hours=2, minutes=10),
            "d",
            [
                ("raw", START + timedelta(hours=1, minutes=30), START + timedelta(hours=2)),
                ("h", START + timedelta(hours=2), START + timedelta(days=1)),
                ("d", START + timedelta(days=1), START + timedelta(days=2)),
                ("h", START + timedelta(days=2), START + timedelta(days=2, hours=2)),
                (
                    "raw",
                    START + timedelta(days=2, hours=2),
                    START + timedelta(days=2, hours=2, minutes=10),
                ),
            ],
        ),
        (
            START + timedelta(minutes=10),
            START + timedelta(minutes=50),
            "d",
            [("raw", START + timedelta(minutes=10), START + timedelta(minutes=50))],
        ),
        (
            START,
            START + timedelta(days=3),
            "h",
            [("h", START, START + timedelta(days=3))],
        ),
    ],
)
def test_a_window_is_cut_into_days_hours_and_ragged_edges(
    since: Any, until: Any, finest: Any, expected: list[Any]
) -> None:
    assert rollup_windows.cover(since, until, finest) == expected
