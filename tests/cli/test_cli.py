import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests.factories import conversation_events
from tuneback import __version__
from tuneback.cli import app
from tuneback.config import settings_table
from tuneback.storage import Store
from tuneback.storage.migrate import head_revision

runner = CliRunner()
HEAD = head_revision()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"tuneback {__version__}\n"


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listing = result.output.split("Commands:")[1].split("Start here:")[0]
    commands = re.findall(r"^  (\w+)\s", listing, re.MULTILINE)
    assert sorted(commands) == [
        "chat", "db", "events", "export", "keys", "leaderboard", "relay", "serve", "settings",
        "stats", "train", "users",
    ]  # fmt: skip


def test_db_info_shows_the_whole_picture(database_url: str) -> None:
    with Store(database_url) as store:
        store.append_many(conversation_events())
        shown_url = store.display_url
    result = runner.invoke(app, ["db", "info", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    assert [line.rstrip() for line in result.output.splitlines()] == [
        f"database  {shown_url}",
        f"dialect   {dialect}",
        f"revision  {HEAD} (newest: {HEAD})",
        "last seq  27",
        "table             rows",
        "projects             1",
        "feedback_configs     1",
        "conversations        1",
        "messages             3",
        "runs                 3",
        "feedback             6",
        "comparisons          1",
        "comparison_runs      2",
        "datasets             1",
        "dataset_items        1",
        "review_queues        1",
        "review_feedback      1",
        "review_members       3",
        "annotation_tasks     1",
        "rollups             18",
        "rollup_scores        8",
        "rollup_firsts        6",
        "rollup_newcomers     6",
        "rollup_days          6",
        "rollup_returns       6",
        "events              27",
    ]


def test_db_upgrade_and_rebuild(database_url: str) -> None:
    with Store(database_url) as store:
        store.append_many(conversation_events())
    upgraded = runner.invoke(app, ["db", "upgrade", "-d", database_url])
    assert upgraded.exit_code == 0
    assert upgraded.output.endswith(f"is at schema revision {HEAD} (newest: {HEAD})\n")
    rebuilt = runner.invoke(app, ["db", "rebuild", "-d", database_url])
    assert rebuilt.exit_code == 0
    assert rebuilt.output == "rebuilt the projections from 27 events\n"


def test_events_prints_json_lines_after_an_offset(database_url: str) -> None:
    with Store(database_url) as store:
        stored = store.append_many(conversation_events())
    result = runner.invoke(app, ["events", "--after", "10", "-d", database_url])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == [e.to_json_dict() for e in stored[10:]]
    typed = runner.invoke(app, ["events", "-t", "run.failed", "--limit", "5", "-d", database_url])
    assert [json.loads(line)["type"] for line in typed.output.splitlines()] == ["run.failed"]
    limited = runner.invoke(app, ["events", "--limit", "3", "-d", database_url])
    assert [json.loads(line)["seq"] for line in limited.output.splitlines()] == [1, 2, 3]


def test_settings_lists_every_environment_variable() -> None:
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 0
    for name, _default, _description in settings_table():
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "info", "-d", "mysql://x/y"], "error: unsupported database 'mysql'"),
        (["db", "info", "-d", "not a url"], "error: cannot parse database URL 'not a url'"),
        (
            ["db", "info", "-d", "postgresql://nobody@127.0.0.1:1/x"],
            "error: cannot open database postgresql://nobody@127.0.0.1:1/x: connection failed",
        ),
    ],
)
def test_a_user_mistake_prints_one_line_and_no_traceback(args: list[str], message: str) -> None:
    # The installed entry point, as a user runs it.
    proc = subprocess.run(
        [sys.executable, "-m", "tuneback", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(message)
    assert "Traceback" not in proc.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tuneback", "db", "info", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "No such option: --bogus" in proc.stderr
    assert "Traceback" not in proc.stderr
