"""Keys as people name them (spaces, emoji, up to 64 characters), kept in one
normalised form from the SDK through the API to the store; what the key rule
refuses is refused at the SDK call and by the API alike."""

from __future__ import annotations

import httpx
import pytest

from tests.client.conftest import Sdk
from tuneback import ValidationError
from tuneback.client.wire import feedback_key


def test_keys_with_spaces_and_emoji_are_kept_in_one_form(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    run_id = client.log_run(inputs="q", output="a")
    a = client.record_feedback(run_id, "faces 🙂", score=1.0, user="ann")
    b = client.record_feedback(run_id, "  faces \t 🙂 ", score=0.5, user="ann")
    http = httpx.Client(
        base_url="http://tuneback.test",
        transport=sdk.transport,
        headers={"Authorization": f"Bearer {sdk.key}"},
    )
    posted = http.post(
        "/api/v1/feedback",
        json={"run_id": run_id, "key": "Cafe\u0301  helpful?", "score": 1, "user": "ann"},
    )
    assert (posted.status_code, posted.json()["key"]) == (201, "Café helpful?")
    config = http.put(
        "/api/v1/feedback-configs/Ton%20%20de%20voix", json={"config": {"type": "freeform"}}
    )
    assert (config.status_code, config.json()["key"]) == (200, "Ton de voix")
    # The second "faces 🙂" rating is the same key, so it supersedes the first.
    assert [
        (f.key, f.score, f.current) for f in sdk.store.feedback_for_run(run_id, history=True)
    ] == [
        ("faces 🙂", 1.0, False),
        ("faces 🙂", 0.5, True),
        ("Café helpful?", 1.0, True),
    ]
    assert sdk.store.get_feedback(a).superseded_by == b
    assert list(sdk.store.feedback_configs("demo")) == ["Ton de voix"]
    refused = http.post("/api/v1/feedback", json={"run_id": run_id, "key": "a/b", "score": 1})
    assert refused.status_code == 422
    assert "not / \\ \" ' < > `" in refused.json()["error"]["message"]
    http.close()
    client.close()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("a/b", "not / \\"),
        ("<b>", "not / \\"),
        ("", "not / \\"),
        ("   ", "not / \\"),
        ("x" * 65, "at most 64"),
        ("bell\x07", "not / \\"),
    ],
)
def test_the_sdk_refuses_what_the_server_would_at_the_call(
    sdk: Sdk, key: str, problem: str
) -> None:
    with (
        sdk.client() as client,
        pytest.raises(ValidationError, match=problem.replace("\\", "\\\\")),
    ):
        client.record_feedback("01ARZ3NDEKTSV4RRFFQ69G5FAV", key, score=1.0)
    assert feedback_key(" thumbs ") == "thumbs"
