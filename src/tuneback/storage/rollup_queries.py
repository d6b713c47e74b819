"""The dashboard's numbers read from rollups, in the shapes the raw queries return.

:class:`tuneback.storage.analytics.Analytics` decides which source answers a
window and turns either into the same output, so the two can be compared
number for number (the tests do). Percentiles come from log-spaced histograms
and are within :data:`tuneback.domain.stats.RELATIVE_ERROR` of the exact ones;
every count, sum and mean is exact (means to a billionth).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tuneback.domain.stats import histogram_percentiles
from tuneback.storage import rollup_firsts
from tuneback.storage.rollup_windows import WindowRollups
from tuneback.storage.rollups import (
    NO_SCORE,
    SCALE,
    Grain,
    RowKey,
    Tally,
    period_of,
)

_SPLIT_DIMS = {"model": "", "user": "user", "system_prompt": "prompt", "tag": "tag"}


def _total(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


def _percentiles(tally: Tally, name: str, fractions: tuple[float, ...]) -> dict[str, Any]:
    values = histogram_percentiles(getattr(tally, name), fractions)
    return {f"{name}_p{round(f * 100)}": v for f, v in zip(fractions, values, strict=True)}


def _run_numbers(tally: Tally) -> dict[str, Any]:
    c = tally.counts
    return {
        "runs": c["runs"],
        "errors": c["errors"],
        **_percentiles(tally, "latency", (0.5, 0.9, 0.99)),
        **_percentiles(tally, "ttft", (0.5, 0.99)),
        "prompt_tokens": c["prompt_tokens"],
        "completion_tokens": c["completion_tokens"],
    }


def _ratings(tally: Tally) -> dict[str, Any]:
    """Current explicit ratings, as the raw queries name them."""
    c = tally.counts
    scored = c["scored"]
    return {
        "rated_runs": c["rated_runs"],
        "up": c["up"],
        "thumbs": c["thumbs"],
        "mean_score": c["score_sum"] / SCALE / scored if scored else None,
        "mean_square": c["score_squares"] / SCALE / scored if scored else None,
        "scored": scored,
    }


def _model(key: RowKey) -> str | None:
    return key[4] or None


class RollupAnswers:
    """One window's answers from rollups, on one connection."""

    def __init__(self, window: WindowRollups) -> None:
        self.window = window

    def _distinct(self, dim: str, *, by_model: bool) -> dict[str, int]:
        return rollup_firsts.distinct(self.window, dim, by_model=by_model)

    def summary(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run numbers and the feedback numbers of :meth:`Analytics.summary`."""
        total = _total(tally for _, tally in self.window.rows(""))
        runs = {
            **_run_numbers(total),
            "conversations": self._distinct("conversation", by_model=False).get("", 0),
            "users": self._distinct("user", by_model=False).get("", 0),
        }
        feedback = {
            **_ratings(total),
            "feedback": total.counts["feedback"],
            "corrections": total.counts["corrections"],
        }
        return runs, feedback

    def over_time(self, bucket: Grain) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]]]:
        """Per hour or day: the run rows and the feedback rows of :meth:`Analytics.over_time`."""
        by_bucket: dict[datetime, Tally] = {}
        for key, tally in self.window.rows(""):
            by_bucket.setdefault(period_of(key[3], bucket), Tally()).add(tally)
        runs, feedback = [], {}
        for moment in sorted(by_bucket):
            tally, c = by_bucket[moment], by_bucket[moment].counts
            if not c["runs"]:
                continue
            runs.append(
                {
                    "bucket": moment,
                    "runs": c["runs"],
                    "errors": c["errors"],
                    **_percentiles(tally, "latency", (0.5, 0.99)),
                }
            )
            if c["feedback"]:
                scored = c["scored_all"]
                feedback[moment] = {
                    "feedback": c["feedback"],
                    "up": c["up"],
                    "thumbs": c["thumbs"],
                    "mean_score": c["score_sum_all"] / SCALE / scored if scored else None,
                }
        return runs, feedback

    def _groups(self, by: str) -> dict[Any, Tally]:
        """The window's numbers per model, user, system prompt or tag (no histograms)."""
        groups: dict[Any, Tally] = {}
        for model, value, tally in self.window.totals(_SPLIT_DIMS[by]):
            group: Any = value
            if by == "model":
                group = model or None
            elif by == "system_prompt":
                group = tally.label
            elif by == "user":
                group = value or None
            groups.setdefault(group, Tally()).add(tally)
        return groups

    def split_by_model(self) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]]]:
        """The run rows and feedback rows of :meth:`Analytics.split` by model."""
        groups: dict[Any, Tally] = {}
        for key, tally in self.window.rows(""):
            groups.setdefault(_model(key), Tally()).add(tally)
        conversations = self._distinct("conversation", by_model=True)
        users = self._distinct("user", by_model=True)
        runs = [
            {
                "group": group,
                **_run_numbers(tally),
                "conversations": conversations.get(group or "", 0),
                "users": users.get(group or "", 0),
            }
            for group, tally in groups.items()
            if tally.counts["runs"]
        ]
        runs.sort(key=lambda row: -row["runs"])
        return runs[:50], {group: _ratings(tally) for group, tally in groups.items()}

    def ratings(self, by: str) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]]]:
        """The run rows and feedback rows of :meth:`Analytics.ratings`."""
        groups = self._groups(by)
        runs = [
            {"group": group, "runs": tally.counts["runs"]}
            for group, tally in groups.items()
            if tally.counts["runs"]
        ]
        return runs, {group: _ratings(tally) for group, tally in groups.items()}

    def keys(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The per-key rows and the score distribution rows of :meth:`Analytics.keys`."""
        per_key: dict[str, dict[str, Any]] = {}
        spread: dict[tuple[str, float], int] = {}
        for (key, kind, score), n in self.window.scores():
            if not n:
                continue
            row = per_key.setdefault(
                key, {"key": key, "count": 0, "scored": 0, "sum": 0.0, "squares": 0.0, "kind": kind}
            )
            row["count"] += n
            row["kind"] = min(row["kind"], kind)
            if score != NO_SCORE:
                row["scored"] += n
                row["sum"] += score * n
                row["squares"] += score * score * n
                spread[(key, score)] = spread.get((key, score), 0) + n
        stats = [
            {
                "key": row["key"],
                "count": row["count"],
                "scored": row["scored"],
                "mean_score": row["sum"] / row["scored"] if row["scored"] else None,
                "mean_square": row["squares"] / row["scored"] if row["scored"] else None,
                "kind": row["kind"],
            }
            for row in sorted(per_key.values(), key=lambda row: (-row["count"], row["key"]))
            if row["count"]
        ]
        distribution = [
            {"key": key, "score": score, "count": n}
            for (key, score), n in sorted(spread.items())
            if n
        ]
        return stats, distribution
