"""Runs count on the day they happened (``started_at``), not the day they were logged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.domain.stats import RELATIVE_ERROR
from tuneback.export import ExportFilters, export_dataset
from tuneback.services.analytics import dashboard
from tuneback.storage import Store
from tuneback.storage.analytics import Analytics, Window, prompt_version
from tuneback.storage.queries import Queries, RunFilter

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def _backdated(store: Store, days: int = 13) -> list[Run]:
    """One run a day over ``days`` days, all logged now with their real start."""
    runs = [
        Run(
            project="p",
            model="m",
            inputs=[ChatMessage(role="user", content=f"q{n}")],
            output=f"a{n}",
            latency_ms=100.0 + n,
            started_at=NOW - timedelta(days=n, hours=1),
            created_at=NOW - timedelta(minutes=5),
        )
        for n in range(days)
    ]
    store.append_many([RunCompleted(run=run) for run in runs])
    return runs


def test_periods_and_days_follow_started_at(store: Store) -> None:
    runs = _backdated(store)
    week = dashboard(store, project="p", period="7d", now=NOW)
    assert week["summary"]["runs"] == 7
    assert [(b["bucket"][:10], b["runs"]) for b in week["over_time"]] == [
        ((NOW - timedelta(days=n)).strftime("%Y-%m-%d"), 1 if n < 7 else 0)
        for n in range(7, -1, -1)
    ]
    assert week["previous"]["runs"] == 6
    month = dashboard(store, project="p", period="30d", now=NOW)
    assert month["summary"]["runs"] == len(runs)
    per_day = {b["bucket"][:10]: b["runs"] for b in month["over_time"] if b["runs"]}
    assert per_day == {r.happened_at.strftime("%Y-%m-%d"): 1 for r in runs}


def test_a_run_without_started_at_counts_when_recorded(store: Store) -> None:
    run = Run(project="p", model="m", inputs=[], created_at=NOW - timedelta(days=3))
    store.append(RunCompleted(run=run))
    assert run.happened_at == run.created_at
    window = Window("p", since=NOW - timedelta(days=4), until=NOW - timedelta(days=2))
    assert Analytics(store).summary(window)["runs"] == 1


def test_the_explorer_sorts_and_filters_by_when_runs_happened(store: Store) -> None:
    runs = _backdated(store, days=5)
    late = Run(project="p", model="m", inputs=[], created_at=NOW - timedelta(days=2, hours=12))
    store.append(RunCompleted(run=late))
    queries = Queries(store)
    rows, total = queries.explore(RunFilter(project="p"), sort="newest")
    expected = sorted([*runs, late], key=lambda r: r.happened_at, reverse=True)
    assert [row["run"].id for row in rows] == [r.id for r in expected]
    assert total == 6
    oldest, _ = queries.explore(RunFilter(project="p"), sort="oldest")
    assert [row["run"].id for row in oldest] == [r.id for r in reversed(expected)]
    since = NOW - timedelta(days=2, hours=13)
    window, total = queries.explore(RunFilter(project="p", since=since))
    assert [row["run"].id for row in window] == [r.id for r in expected if r.happened_at >= since]
    assert total == 4


def test_first_token_is_blank_when_no_run_measured_it(store: Store) -> None:
    _backdated(store, days=2)
    summary = dashboard(store, project="p", period="7d", now=NOW)["summary"]
    assert summary["ttft_p50"] is None
    assert summary["ttft_p99"] is None
    # Read from the rollups' histogram: within its stated error of the exact 100.5.
    assert abs(summary["latency_p50"] - 100.5) <= RELATIVE_ERROR * 100.5


def test_a_system_message_in_the_inputs_names_the_prompt(store: Store) -> None:
    prompts = ["Answer in French.", "Answer in French.", None]
    for prompt in prompts:
        inputs = [ChatMessage(role="user", content="hi")]
        if prompt:
            inputs.insert(0, ChatMessage(role="system", content=prompt))
        store.append(RunCompleted(run=Run(project="p", inputs=inputs, created_at=NOW)))
    chain = Run(project="p", run_type="chain", inputs={"question": "hi"}, created_at=NOW)
    store.append(RunCompleted(run=chain))
    rows = Analytics(store).split(Window("p"), "system_prompt")
    assert [(r["group"], r["raw_group"], r["runs"]) for r in rows] == [
        (prompt_version("Answer in French."), "Answer in French.", 2),
        ("(none)", None, 2),
    ]


def test_the_api_list_and_exports_select_by_when_runs_happened(
    store: Store, tmp_path: Path
) -> None:
    runs = _backdated(store, days=4)
    since = NOW - timedelta(days=2, hours=6)
    page = Queries(store).runs(RunFilter(project="p", since=since), limit=10)
    assert {r.id for r in page.data} == {r.id for r in runs[:3]}
    summary = export_dataset(
        store, format="runs", output=tmp_path, filters=ExportFilters(project="p", since=since)
    )
    [file] = summary.files
    exported = [json.loads(line)["id"] for line in Path(file.path).read_text().splitlines()]
    assert sorted(exported) == sorted(r.id for r in runs[:3])
