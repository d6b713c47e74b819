import re

from typer.testing import CliRunner

from tuneback.cli import app
from tuneback.storage import Store

runner = CliRunner()


def test_terminal_chat_streams_and_records_ratings(database_url: str) -> None:
    session = "\n".join(
        ["Hello there", "f", "Tell me more", "4", "Once more", "c", "Too short.", "/quit", ""]
    )
    result = runner.invoke(
        app, ["chat", "-m", "echo", "--user", "ann", "-d", database_url], input=session
    )
    assert result.exit_code == 0, result.output
    text = re.sub(r"run [0-9A-Z]{26}", "run <id>", result.output)
    text = re.sub(r"\d+\.\d s", "<t> s", text)
    rate = "rate › t 👍  f 👎  1-5 faces  c comment  e better answer  r regenerate  ⏎ skip: "
    assert text.splitlines() == [
        "Echo · /new, /quit · recording as ann",
        "you › Echo › Hello there",
        "echo · <t> s · run <id>",
        f"{rate}saved 👎",
        "you › Echo › Tell me more",
        "echo · <t> s · run <id>",
        f"{rate}saved 🙂",
        "you › Echo › Once more",
        "echo · <t> s · run <id>",
        f"{rate}comment › comment saved",
        "you › ",
    ]
    with Store(database_url) as store:
        runs = store.list_runs("default")
        assert [r.output for r in runs] == ["Once more", "Tell me more", "Hello there"]
        ratings = [
            (f.key, f.value, f.comment, f.user)
            for run in reversed(runs)
            for f in store.feedback_for_run(run.id)
        ]
        assert ratings == [
            ("thumbs", "down", None, "ann"),
            ("faces", "🙂", None, "ann"),
            ("comment", None, "Too short.", "ann"),
        ]
        [conversation] = store.list_conversations("default")
        assert conversation.ended_at is not None


def test_regenerate_from_the_terminal(database_url: str) -> None:
    result = runner.invoke(
        app,
        ["chat", "-m", "echo", "--user", "bo", "-d", database_url],
        input="Same again\nr\nt\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        first, second = reversed(store.list_runs("default"))
        assert first.inputs == second.inputs
        assert [(f.key, f.kind) for f in store.feedback_for_run(first.id)] == [
            ("regenerated", "implicit")
        ]
        assert [(f.key, f.value) for f in store.feedback_for_run(second.id)] == [("thumbs", "up")]
