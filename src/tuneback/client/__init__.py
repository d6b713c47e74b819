"""The Python SDK: log runs and feedback to a tuneback server from your own app.

::

    import tuneback

    client = tuneback.Client("http://127.0.0.1:8000", api_key="tb_…")
    run_id = client.log_run(inputs="Hi", output="Hello!", model="gpt-4o-mini")
    client.feedback(run_id, type="rating", value="good", user="ann")
"""

from tuneback.client.aio import AsyncClient
from tuneback.client.batcher import AsyncBatcher, BackgroundBatcher, BatchStats
from tuneback.client.sync import Client
from tuneback.client.wire import ApiError, EventsPage, FeedbackToken, RunsPage

__all__ = [
    "ApiError",
    "AsyncBatcher",
    "AsyncClient",
    "BackgroundBatcher",
    "BatchStats",
    "Client",
    "EventsPage",
    "FeedbackToken",
    "RunsPage",
]
