"""The dashboard says how far the relay to NATS is behind the log, and its JSON twin too."""

from __future__ import annotations

import httpx

from tests.api.conftest import BASE, make_app
from tests.factories import conversation_events
from tuneback.storage import Store
from tuneback.storage.relay import write_position


async def test_the_dashboard_shows_the_relays_lag(store: Store) -> None:
    app = make_app(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        quiet = await client.get("/dashboard", params={"format": "json"})
        assert quiet.json()["stream"] == []
        assert "Event stream" not in (await client.get("/dashboard")).text

        store.append_many(conversation_events())
        last = store.last_seq()
        write_position(store.engine, "nats:TUNEBACK", last - 3)
        data = (await client.get("/dashboard", params={"format": "json"})).json()["stream"]
        assert [(r["name"], r["seq"], r["behind"]) for r in data] == [
            ("nats:TUNEBACK", last - 3, 3)
        ]
        assert data[0]["lag_s"] >= 0
        page = (await client.get("/dashboard")).text
        assert "nats:TUNEBACK at event" in page
        assert "<strong>3 behind</strong>" in page

        write_position(store.engine, "nats:TUNEBACK", last)
        page = (await client.get("/dashboard")).text
        assert "up to date" in page
