"""The Streamlit helpers driven by Streamlit's own AppTest, against a real tuneback app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.client.conftest import Sdk
from tests.client.servers import serving
from tests.models.openai_server import FakeOpenAIServer
from tuneback import Client

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# AppTest runs a function's source as a script, without this module's imports:
# the apps' annotations name builtins only.
def rating_app(client: object, run_id: str, scale: str, lock: bool, comment: bool) -> None:
    from tuneback.integrations import streamlit as tb_st

    tb_st.feedback(run_id, scale=scale, lock=lock, comment=comment, user="ann", client=client)  # type: ignore[arg-type]


def start(client: Client, run_id: str, scale: str = "thumbs", **options: bool) -> AppTest:
    kwargs = {"lock": False, "comment": False, **options}
    at = AppTest.from_function(
        rating_app, args=(client, run_id, scale), kwargs=kwargs, default_timeout=30
    )
    return at.run()


def ratings(sdk: Sdk, run_id: str) -> list[tuple[str, float | None, bool]]:
    """(key, score, current) for every rating on the run, history included, oldest first."""
    return [(f.key, f.score, f.current) for f in sdk.store.feedback_for_run(run_id, history=True)]


def test_a_rating_lands_once_however_often_the_app_reruns(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    at = start(client, run_id)
    assert not at.exception
    at.feedback[0].set_value(1).run()
    at.run()
    at.run()
    assert ratings(sdk, run_id) == [("thumbs", 1.0, True)]
    assert [c.value for c in at.caption] == ["Sent 👍"]
    client.close()


def test_a_changed_rating_replaces_the_old_and_unclicking_retracts_it(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    at = start(client, run_id, "faces")
    at.feedback[0].set_value(4).run()
    at.feedback[0].set_value(0).run()
    assert ratings(sdk, run_id) == [("faces", 1.0, False), ("faces", 0.0, True)]
    at.feedback[0].set_value(None).run()
    assert [current for _, _, current in ratings(sdk, run_id)] == [False, False]
    assert [c.value for c in at.caption] == []
    client.close()


def test_a_locked_rating_is_final_and_a_comment_goes_with_it(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    at = start(client, run_id, "stars", lock=True, comment=True)
    assert not at.feedback[0].disabled
    assert len(at.text_input) == 0
    at.feedback[0].set_value(2).run()
    at.text_input[0].input("too long").run()
    assert at.feedback[0].disabled
    assert at.feedback[0].value == 2
    at.run()
    assert ratings(sdk, run_id) == [("stars", 0.5, True), ("comment", None, True)]
    [comment] = [f for f in sdk.store.feedback_for_run(run_id) if f.key == "comment"]
    assert (comment.comment, comment.user, comment.source) == ("too long", "ann", "end_user")
    assert [c.value for c in at.caption] == ["Sent ★★★ with your comment"]
    client.close()


def stream_app(client: object) -> None:
    import streamlit as st

    from tuneback.integrations import streamlit as tb_st

    def reply() -> object:
        yield from ["Hello", " there"]

    messages = [{"role": "user", "content": "Hi"}]
    text, run_id = tb_st.write_stream(reply(), inputs=messages, model="m", client=client)
    st.session_state["result"] = (text, run_id)


def test_write_stream_returns_the_text_and_the_run_id(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    at = AppTest.from_function(stream_app, args=(client,), default_timeout=30).run()
    assert not at.exception
    text, run_id = at.session_state["result"]
    assert text == "Hello there"
    run = sdk.store.get_run(run_id)
    assert (run.output, run.model, run.status) == ("Hello there", "m", "ok")
    assert run.ttft_ms is not None
    assert run.metadata == {"integration": "streamlit"}
    client.close()


def test_the_streamlit_example(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch, openai_server: FakeOpenAIServer
) -> None:
    import streamlit as st

    with serving(sdk.app) as server:
        monkeypatch.setenv("TUNEBACK_URL", server.url)
        monkeypatch.setenv("TUNEBACK_API_KEY", sdk.key)
        monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("MODEL", "fake-model")
        st.cache_resource.clear()
        made: list[Client] = []
        init = Client.__init__

        def remember(self: Client, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            made.append(self)

        # The example makes its own client: keep hold of it to deliver its queue.
        monkeypatch.setattr(Client, "__init__", remember)
        at = AppTest.from_file(str(EXAMPLES / "streamlit_chat.py"), default_timeout=30).run()
        at.chat_input[0].set_value("Hi").run()
        assert not at.exception
        at.feedback[0].set_value(0).run()
        at.text_input[0].input("wrong").run()
        at.chat_input[0].set_value("Again").run()
        at.feedback[1].set_value(1).run()
        assert not at.exception
        assert [m.value for m in at.markdown if m.value.startswith("Hello")] == [
            "Hello from the server",
            "Hello from the server",
        ]
        [client] = made
        assert client.flush(timeout=10)
        assert client.stats.dropped == 0
        st.cache_resource.clear()
    runs = sdk.store.list_runs("demo")
    assert len(runs) == 2
    got = sorted(
        (f.key, f.score, f.comment) for r in runs for f in sdk.store.feedback_for_run(r.id)
    )
    assert got == [("comment", None, "wrong"), ("thumbs", 0.0, None), ("thumbs", 1.0, None)]
