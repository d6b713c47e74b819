"""The dashboard's numbers: a period, the same period before it, the trend and the splits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from tuneback.domain import utcnow
from tuneback.errors import ValidationError
from tuneback.storage import Store
from tuneback.storage.analytics import Analytics, Bucket, Window

Period = Literal["24h", "7d", "30d", "90d", "all"]
PERIODS: dict[Period, tuple[timedelta | None, Bucket]] = {
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "day"),
    "30d": (timedelta(days=30), "day"),
    "90d": (timedelta(days=90), "day"),
    "all": (None, "day"),
}
HEADLINES = (
    "runs",
    "conversations",
    "users",
    "feedback",
    "feedback_rate",
    "positive_rate",
    "mean_score",
    "latency_p50",
    "latency_p99",
    "ttft_p50",
    "error_rate",
)


def _change(now: Any, before: Any) -> float | None:
    if not isinstance(now, int | float) or not isinstance(before, int | float) or not before:
        return None
    return (now - before) / before


def dashboard(
    store: Store,
    *,
    project: str,
    period: str = "7d",
    model: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the dashboard page (and ``tuneback stats``) shows, as plain data."""
    if period not in PERIODS:
        raise ValidationError(
            f"period must be one of {', '.join(PERIODS)}, not {period!r}",
            details={"allowed": list(PERIODS)},
        )
    span, bucket = PERIODS[period]
    until = now or utcnow()
    since = until - span if span else None
    window = Window(project, since=since, until=until, model=model)
    analytics = Analytics(store)
    with analytics.at_once():
        summary = analytics.summary(window)
        previous = None
        if span is not None and since is not None:
            before = Window(project, since=since - span, until=since, model=model)
            previous = analytics.summary(before)
        numbers = {
            "over_time": analytics.over_time(window, bucket),
            "by_model": analytics.split(window, "model"),
            "by_key": analytics.keys(window),
            # The page shows runs and ratings per user, prompt and tag: the ratings'
            # numbers, which rollups hold for every group, not split()'s distinct counts.
            "by_user": _busiest(analytics.ratings(window, "user")),
            "by_prompt": _busiest(analytics.ratings(window, "system_prompt")),
            "by_tag": _busiest(analytics.ratings(window, "tag")),
        }
    return {
        "project": project,
        "period": period,
        "model": model,
        "since": since.isoformat() if since else None,
        "until": until.isoformat(),
        "bucket": bucket,
        "summary": summary,
        "previous": previous,
        "change": {
            key: _change(summary.get(key), previous.get(key)) if previous else None
            for key in HEADLINES
        },
        **numbers,
    }


def _busiest(rows: list[dict[str, Any]], limit: int = 50) -> list[dict[str, Any]]:
    """The groups with the most runs first (ties by name), as many as a page lists."""
    return sorted(rows, key=lambda row: (-row["runs"], str(row["group"])))[:limit]
