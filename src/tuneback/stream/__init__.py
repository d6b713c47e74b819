"""Stream the event log to NATS JetStream, and read it back (optional extra ``tuneback[nats]``).

- :mod:`tuneback.stream.subjects`: the stream's settings, subjects and message shape;
- :mod:`tuneback.stream.relay`: the outbox relay, which follows the log by ``seq``
  and publishes every committed event once as JetStream sees it;
- :mod:`tuneback.stream.reader`: read the stream back after a ``seq`` and copy it
  into an empty store.

Nothing here is imported unless streaming is asked for, so ``nats-py`` stays optional.
"""

from tuneback.stream.relay import BackgroundRelay, Relay, RelayStats, lease_and_relay
from tuneback.stream.subjects import StreamTarget, subject_for

__all__ = [
    "BackgroundRelay",
    "Relay",
    "RelayStats",
    "StreamTarget",
    "lease_and_relay",
    "subject_for",
]
