"""The SDK records how a comparison was set up and which earlier vote it replaces."""

from __future__ import annotations

from tests.client.conftest import Sdk


def test_a_revote_through_the_sdk(sdk: Sdk) -> None:
    client = sdk.client(background=False)
    a = client.log_run(inputs="q", output="short", model="m1")
    b = client.log_run(inputs="q", output="long", model="m2")
    first = client.compare([a, b], outcome="a", user="ann", mode="named")
    second = client.compare([a, b], outcome="tie", user="ann", mode="named", supersedes=first)
    stored = [sdk.store.get_comparison(c) for c in (first, second)]
    assert [(c.outcome, c.mode, c.supersedes, c.superseded_by) for c in stored] == [
        ("a", "named", None, second),
        ("tie", "named", first, None),
    ]
