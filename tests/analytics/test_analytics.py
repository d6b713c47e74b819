"""Dashboard aggregates against the same numbers computed independently in Python."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import pytest

from tests.analytics.seed import START, Seeded, seed
from tuneback.domain.stats import RELATIVE_ERROR
from tuneback.storage import Store
from tuneback.storage.analytics import (
    Analytics,
    Window,
    mean_ci,
    percentile,
    prompt_version,
    wilson,
)


@pytest.fixture
def seeded(store: Store) -> Seeded:
    return seed(store)


@pytest.fixture(params=[True, False], ids=["rollups", "raw"])
def from_rollups(request: pytest.FixtureRequest) -> bool:
    """Every answer is checked from the rollups and from the raw tables."""
    return bool(request.param)


def _near(got: float | None, exact: float | None, from_rollups: bool) -> bool:
    """Percentiles from rollups' histograms are within their stated error; raw ones exact."""
    if not from_rollups or got is None or exact is None:
        return _close(got, exact)
    return abs(got - exact) <= RELATIVE_ERROR * abs(exact) + 1e-9


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-6


def _quantile(values: list[float], fraction: float) -> float:
    # statistics.quantiles with method="inclusive" interpolates exactly as percentile_cont.
    if fraction == 0.5:
        return statistics.median(values)
    cut = round(fraction * 100)
    return statistics.quantiles(values, n=100, method="inclusive")[cut - 1]


def test_summary_matches_an_independent_computation(
    store: Store, seeded: Seeded, from_rollups: bool
) -> None:
    window = Window("seeded", since=START + timedelta(days=1), until=START + timedelta(days=3))
    runs = [r for r in seeded.runs if window.since <= r.created_at < window.until]  # type: ignore[operator]
    ids = {r.id for r in runs}
    current = [f for f in seeded.current_feedback() if f.run_id in ids]
    thumbs = [f for f in current if f.key == "thumbs"]
    scores = [f.score for f in current if f.score is not None]

    got = Analytics(store, rollups=from_rollups).summary(window)

    assert got["runs"] == len(runs)
    assert got["conversations"] == len({r.conversation_id for r in runs})
    assert got["users"] == len({r.user for r in runs})
    assert got["errors"] == sum(r.status == "error" for r in runs)
    assert got["feedback"] == len(current)
    assert _close(got["feedback_rate"], len({f.run_id for f in current}) / len(runs))
    up = sum(f.score == 1 for f in thumbs)
    assert _close(got["positive_rate"], up / len(thumbs))
    assert got["positive_ci"] == wilson(up, len(thumbs))
    assert _close(got["mean_score"], statistics.fmean(scores))
    latencies = [r.latency_ms for r in runs if r.latency_ms is not None]
    for name, fraction in (("latency_p50", 0.5), ("latency_p90", 0.9), ("latency_p99", 0.99)):
        assert _near(got[name], _quantile(latencies, fraction), from_rollups), name
    ttfts = [r.ttft_ms for r in runs if r.ttft_ms is not None]
    assert _near(got["ttft_p99"], _quantile(ttfts, 0.99), from_rollups)
    assert got["prompt_tokens"] == sum(r.prompt_tokens or 0 for r in runs)
    assert got["completion_tokens"] == sum(r.completion_tokens or 0 for r in runs)


def test_split_by_model_user_prompt_and_tag(
    store: Store, seeded: Seeded, from_rollups: bool
) -> None:
    window = Window("seeded")
    analytics = Analytics(store, rollups=from_rollups)
    current = seeded.current_feedback()

    by_model = {row["group"]: row for row in analytics.split(window, "model")}
    for model in ("alpha", "beta", "gamma"):
        runs = [r for r in seeded.runs if r.model == model]
        ids = {r.id for r in runs}
        thumbs = [f for f in current if f.run_id in ids and f.key == "thumbs"]
        assert by_model[model]["runs"] == len(runs)
        assert _close(
            by_model[model]["positive_rate"], sum(f.score == 1 for f in thumbs) / len(thumbs)
        )
        assert _near(
            by_model[model]["latency_p50"],
            statistics.median(r.latency_ms for r in runs),  # type: ignore[type-var]
            from_rollups,
        )

    by_user = {row["group"]: row["runs"] for row in analytics.split(window, "user")}
    assert by_user == Counter(r.user for r in seeded.runs)

    by_prompt = {row["group"]: row["runs"] for row in analytics.split(window, "system_prompt")}
    expected_prompts = Counter(
        prompt_version(seeded.conversations[r.conversation_id].system_prompt)  # type: ignore[index]
        for r in seeded.runs
    )
    assert by_prompt == expected_prompts

    by_tag = {row["group"]: row["runs"] for row in analytics.split(window, "tag")}
    assert by_tag == Counter(tag for r in seeded.runs for tag in r.tags)


def test_keys_and_distributions(store: Store, seeded: Seeded, from_rollups: bool) -> None:
    keys = {
        row["key"]: row for row in Analytics(store, rollups=from_rollups).keys(Window("seeded"))
    }
    current = seeded.current_feedback()
    for key in ("thumbs", "faces", "stars"):
        mine = [f for f in current if f.key == key]
        scores = [f.score for f in mine if f.score is not None]
        assert keys[key]["count"] == len(mine)
        assert _close(keys[key]["mean_score"], statistics.fmean(scores))
        expected = sorted(Counter(scores).items())
        assert [(d["score"], d["count"]) for d in keys[key]["distribution"]] == expected
        ci = keys[key]["mean_score_ci"]
        assert ci[0] < keys[key]["mean_score"] < ci[1]


def test_over_time_by_day(store: Store, seeded: Seeded, from_rollups: bool) -> None:
    series = Analytics(store, rollups=from_rollups).over_time(Window("seeded"), "day")
    per_day: dict[str, list[float]] = defaultdict(list)
    for run in seeded.runs:
        per_day[run.created_at.strftime("%Y-%m-%d")].append(run.latency_ms or 0)
    assert [row["bucket"][:10] for row in series] == sorted(per_day)
    assert [row["runs"] for row in series] == [len(per_day[d]) for d in sorted(per_day)]
    assert all(
        _near(row["latency_p50"], statistics.median(per_day[row["bucket"][:10]]), from_rollups)
        for row in series
    )
    until = START + timedelta(hours=5)
    hourly = Analytics(store, rollups=from_rollups).over_time(Window("seeded", until=until), "hour")
    per_hour = Counter(r.created_at.hour for r in seeded.runs if r.created_at < until)
    assert [row["runs"] for row in hourly] == [per_hour[h] for h in range(5)]


def test_an_empty_project_has_honest_blanks(store: Store, from_rollups: bool) -> None:
    got = Analytics(store, rollups=from_rollups).summary(Window("nothing-here"))
    assert got["runs"] == 0
    assert got["feedback_rate"] is None
    assert got["positive_rate"] is None
    assert got["mean_score"] is None
    assert got["latency_p50"] is None


def test_interval_helpers() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert wilson(0, 0) is None
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert 0.49 < low < 0.5
    assert 0.94 < high < 0.95
    assert mean_ci(0.5, 0.25, 1) is None


def test_the_dashboard_compares_with_the_period_before(store: Store, seeded: Seeded) -> None:
    from tuneback.services.analytics import dashboard

    now = START + timedelta(hours=30)
    data = dashboard(store, project="seeded", period="24h", now=now)
    since, before = now - timedelta(hours=24), now - timedelta(hours=48)
    current = sum(since <= r.created_at < now for r in seeded.runs)
    previous = sum(before <= r.created_at < since for r in seeded.runs)
    assert data["summary"]["runs"] == current
    assert data["previous"]["runs"] == previous
    assert _close(data["change"]["runs"], (current - previous) / previous)
    assert data["bucket"] == "hour"
    assert sum(row["runs"] for row in data["over_time"]) == current


def test_quiet_buckets_are_zero_within_a_bounded_window(
    store: Store, seeded: Seeded, from_rollups: bool
) -> None:
    window = Window("seeded", since=START - timedelta(days=2), until=START + timedelta(days=1))
    series = Analytics(store, rollups=from_rollups).over_time(window, "day")
    assert [row["bucket"] for row in series] == [
        (START + timedelta(days=d)).replace(tzinfo=None).isoformat() for d in (-2, -1, 0)
    ]
    assert [row["runs"] for row in series[:2]] == [0, 0]
    assert series[0]["latency_p50"] is None
    assert series[0]["positive_rate"] is None
    assert series[2]["runs"] == sum(r.created_at < START + timedelta(days=1) for r in seeded.runs)


def test_answers_asked_at_once_equal_answers_asked_alone(store: Store, seeded: Seeded) -> None:
    ragged = START + timedelta(days=1, hours=3, minutes=17)
    windows = [
        Window("seeded", since=ragged, until=ragged + timedelta(days=1, minutes=31)),
        Window("seeded", since=ragged - timedelta(hours=5), until=ragged),
        Window("seeded", since=ragged, until=ragged + timedelta(days=1, minutes=31), model="beta"),
    ]

    def answers(analytics: Analytics, window: Window) -> list[Any]:
        return [
            analytics.summary(window),
            analytics.over_time(window, "hour"),
            analytics.split(window, "model"),
            analytics.keys(window),
            analytics.ratings(window, "tag"),
        ]

    alone = [answers(Analytics(store), window) for window in windows]
    raw = [answers(Analytics(store, rollups=False), window) for window in windows]
    analytics = Analytics(store)
    with analytics.at_once():
        together = [answers(analytics, window) for window in windows]
    assert together == alone
    assert [got[0]["runs"] for got in together] == [want[0]["runs"] for want in raw]
