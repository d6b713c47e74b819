"""``tuneback stats``: the dashboard's numbers in the terminal."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from tuneback.cli.app import DatabaseOption, app, open_store, out, settings_with
from tuneback.services.analytics import PERIODS, dashboard


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _change(value: float | None) -> str:
    if value is None:
        return ""
    return f"{'+' if value >= 0 else '−'}{abs(value) * 100:.0f}%"


HEADLINE_ROWS: tuple[tuple[str, str, Any], ...] = (
    ("runs", "runs", _num),
    ("conversations", "conversations", _num),
    ("users", "users", _num),
    ("feedback", "feedback", _num),
    ("feedback rate", "feedback_rate", _pct),
    ("positive rate", "positive_rate", _pct),
    ("mean score", "mean_score", lambda v: _num(v, 3)),
    ("latency p50", "latency_p50", _ms),
    ("latency p99", "latency_p99", _ms),
    ("first token p50", "ttft_p50", _ms),
    ("error rate", "error_rate", _pct),
)


@app.command()
def stats(
    project: Annotated[
        str | None, typer.Option(help="Project to report on.", envvar="TUNEBACK_PROJECT")
    ] = None,
    period: Annotated[
        str, typer.Option(help=f"One of {', '.join(PERIODS)}; compared with the period before.")
    ] = "7d",
    model: Annotated[str | None, typer.Option(help="Only this model's runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Show what the feedback says: the dashboard's numbers, per model and per feedback key.

    Examples:

    \b
        tuneback stats                         # the last 7 days of the default project
        tuneback stats --period 30d --model local
        tuneback stats --json | jq .summary.positive_rate
    """
    settings = settings_with(project=project, database_url=database_url)
    with open_store(settings.database_url) as store:
        data = dashboard(store, project=settings.project, period=period, model=model)
    if as_json:
        out.print(json.dumps(data, default=str, ensure_ascii=False), markup=False)
        return
    span = f"since {data['since'][:16]}" if data["since"] else "all time"
    out.print(f"[bold]{settings.project}[/bold] · {span}" + (f" · model {model}" if model else ""))
    if not data["summary"]["runs"]:
        out.print("No runs in this period yet: chat, or log runs from your app, then look again.")
        return
    headline = Table(box=None, pad_edge=False)
    headline.add_column("")
    headline.add_column("now", justify="right")
    compared = data["previous"] is not None
    if compared:
        headline.add_column(f"vs previous {period}", justify="right")
    for label, key, fmt in HEADLINE_ROWS:
        cells = [label, fmt(data["summary"][key])]
        if compared:
            cells.append(_change(data["change"].get(key)))
        headline.add_row(*cells)
    out.print(headline)
    models = Table(title="by model", title_justify="left", box=None, pad_edge=False)
    for column in ("model", "runs", "rated", "positive", "mean score", "p50", "errors"):
        models.add_column(column, justify="left" if column == "model" else "right")
    for row in data["by_model"]:
        models.add_row(
            str(row["group"]),
            _num(row["runs"]),
            _pct(row["feedback_rate"]),
            _pct(row["positive_rate"]),
            _num(row["mean_score"], 3),
            _ms(row["latency_p50"]),
            _pct(row["error_rate"]),
        )
    out.print(models)
    if data["by_key"]:
        keys = Table(title="by feedback key", title_justify="left", box=None, pad_edge=False)
        for column in ("key", "count", "mean score", "95% interval"):
            keys.add_column(column, justify="left" if column == "key" else "right")
        for row in data["by_key"]:
            ci = row["mean_score_ci"]
            keys.add_row(
                row["key"],
                _num(row["count"]),
                _num(row["mean_score"], 3),
                f"{ci[0]:.3f} – {ci[1]:.3f}" if ci else "—",
            )
        out.print(keys)
