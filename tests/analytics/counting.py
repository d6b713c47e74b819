"""Users and conversations counted from the stored runs in plain Python, to check the rollups."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC
from typing import Any

from sqlalchemy import Table, select

from tuneback.storage import Store
from tuneback.storage import tables as t
from tuneback.storage.analytics import Analytics, Window


def stored_runs(store: Store) -> list[dict[str, Any]]:
    r = t.runs.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(r.model, r.user, r.conversation_id, r.started_at, r.created_at).where(
                r.project == "seeded"
            )
        ).mappings()
        return [
            {**row, "ran_at": (row["started_at"] or row["created_at"]).astimezone(UTC)}
            for row in rows
        ]


def expected_counts(runs: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """The summary's and the split's counts, from the runs themselves."""
    inside = [
        run
        for run in runs
        if (window.since is None or run["ran_at"] >= window.since)
        and (window.until is None or run["ran_at"] < window.until)
        and (window.model is None or run["model"] == window.model)
    ]
    by_model: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for run in inside:
        for dim in ("user", "conversation_id"):
            if run[dim] is not None:
                by_model[run["model"]][dim].add(run[dim])
    return {
        "conversations": len({r["conversation_id"] for r in inside} - {None}),
        "users": len({r["user"] for r in inside} - {None}),
        "by model": {
            model: (len(sets["conversation_id"]), len(sets["user"]))
            for model, sets in by_model.items()
        },
    }


def answered_counts(store: Store, window: Window) -> dict[str, Any]:
    analytics = Analytics(store)
    summary = analytics.summary(window)
    return {
        "conversations": summary["conversations"],
        "users": summary["users"],
        "by model": {
            row["raw_group"]: (row["conversations"], row["users"])
            for row in analytics.split(window, "model")
        },
    }


def assert_counts_match_the_runs(store: Store, windows: list[Window]) -> None:
    runs = stored_runs(store)
    for window in windows:
        assert answered_counts(store, window) == expected_counts(runs, window), window


def table_rows(store: Store, *tables: Table) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, in primary-key order, by table name."""
    with store.engine.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key))
            ]
            for table in tables
        }
