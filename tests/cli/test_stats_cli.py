import json

from typer.testing import CliRunner

from tests.analytics.seed import seed
from tuneback.cli import app
from tuneback.storage import Store

runner = CliRunner()


def test_stats_prints_the_dashboard_numbers(database_url: str) -> None:
    with Store(database_url) as store:
        seed(store, runs=300)
    result = runner.invoke(
        app, ["stats", "--project", "seeded", "--period", "all", "-d", database_url]
    )
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    assert lines[0] == "seeded · all time"
    assert lines[1].split() == ["now"]
    assert lines[2].split() == ["runs", "300"]
    assert lines[3].split() == ["conversations", "40"]
    assert lines[4].split() == ["users", "4"]
    assert "by model" in lines
    assert lines[lines.index("by model") + 1].split() == [
        "model", "runs", "rated", "positive", "mean", "score", "p50", "errors",
    ]  # fmt: skip
    assert {line.split()[0] for line in lines[lines.index("by model") + 2 :][:3]} == {
        "alpha",
        "beta",
        "gamma",
    }
    assert "by feedback key" in lines


def test_stats_as_json(database_url: str) -> None:
    with Store(database_url) as store:
        seed(store, runs=300)
    args = ["stats", "--project", "seeded", "--period", "all", "--json", "-d", database_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["period"], data["summary"]["runs"], data["previous"]) == ("all", 300, None)
    assert {row["group"] for row in data["by_model"]} == {"alpha", "beta", "gamma"}


def test_stats_on_an_empty_project(database_url: str) -> None:
    result = runner.invoke(app, ["stats", "--project", "empty", "-d", database_url])
    assert result.exit_code == 0
    assert result.output.splitlines()[1] == (
        "No runs in this period yet: chat, or log runs from your app, then look again."
    )


def test_a_bad_period_is_one_clear_line(database_url: str) -> None:
    result = runner.invoke(app, ["stats", "--period", "week", "-d", database_url])
    assert result.exit_code != 0
    assert "period must be one of 24h, 7d, 30d, 90d, all, not 'week'" in str(result.exception)
