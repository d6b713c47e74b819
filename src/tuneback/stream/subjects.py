"""The stream tuneback publishes to: its settings, its subjects and the shape of a message.

One message per event: the subject is ``<prefix>.<project>.<event type>``
(``tuneback.support-bot.feedback.recorded``), the body is the event as
``tuneback events`` prints it (JSON: seq, id, type, version, project,
recorded_at, payload), and the headers carry ``Nats-Msg-Id`` (the event id, so
JetStream drops a message published twice within its duplicate window) and
``Tuneback-Seq`` (the event's place in the log).

A dot in a project name would split its subject token, so it is written ``%2E``
(project names cannot hold ``%``, so this is unambiguous).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tuneback.domain import StoredEvent, parse_payload
from tuneback.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

    from tuneback.storage.relay import LogEntry

log = logging.getLogger("tuneback.stream")

SEQ_HEADER = "Tuneback-Seq"
MSG_ID_HEADER = "Nats-Msg-Id"
EXPECTED_LAST_HEADER = "Nats-Expected-Last-Sequence"

MAX_AGE_DAYS = 30.0
"""Messages older than this leave the stream (JetStream's limits retention)."""
DUPLICATE_WINDOW_SECONDS = 600.0
"""A message id seen within this window is dropped as a repeat."""


@dataclass(frozen=True)
class StreamTarget:
    """Where events go: the NATS servers, the stream's name and its subject prefix."""

    url: str
    stream: str = "TUNEBACK"
    prefix: str = "tuneback"
    max_age_days: float = MAX_AGE_DAYS
    duplicate_window: float = DUPLICATE_WINDOW_SECONDS

    @property
    def subjects(self) -> str:
        return f"{self.prefix}.>"

    @property
    def relay_name(self) -> str:
        """The relay's name in the database: one position per stream."""
        return f"nats:{self.stream}"

    @classmethod
    def from_settings(cls, settings: Any, url: str | None = None) -> StreamTarget:
        chosen = url or settings.nats_url
        if not chosen:
            raise ConfigurationError(
                "no NATS server: set TUNEBACK_NATS_URL=nats://127.0.0.1:4222 or pass one"
            )
        return cls(url=chosen, stream=settings.nats_stream, prefix=settings.nats_subject)


def subject_for(prefix: str, event: StoredEvent | LogEntry) -> str:
    """``<prefix>.<project>.<event type>``; events of no one project are under ``_system``."""
    return f"{prefix}.{event.project.replace('.', '%2E')}.{event.type}"


def encode_message(event: StoredEvent | LogEntry) -> bytes:
    """The message body: the event as ``tuneback events`` prints it.

    From a :class:`LogEntry` the payload goes in as the log holds it, unparsed.
    """
    if isinstance(event, StoredEvent):
        return json.dumps(event.to_json_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    head = json.dumps(
        {
            "seq": event.seq,
            "id": event.id,
            "type": event.type,
            "version": event.version,
            "project": event.project,
            "recorded_at": event.recorded_at.isoformat(),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return f'{head[:-1]},"payload":{event.payload_json}}}'.encode()


def decode_message(data: bytes) -> StoredEvent:
    """The event a stream message carries; refuses a message tuneback did not write."""
    try:
        raw = json.loads(data)
        payload = parse_payload(raw["type"], raw["version"], raw["payload"])
        return StoredEvent(
            seq=raw["seq"],
            id=raw["id"],
            type=raw["type"],
            version=raw["version"],
            project=raw["project"],
            recorded_at=raw["recorded_at"],
            payload=payload,
        )
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"a stream message is not a tuneback event: {exc}") from None


_PAYLOAD_KEY = b',"payload":'


def decode_entry(data: bytes) -> LogEntry:
    """The event a message carries, its payload kept as the JSON text the source stored.

    The payload is checked (it must read as its event type) but not re-encoded,
    so a copy holds exactly what the source held.
    """
    from tuneback.storage.relay import LogEntry

    cut = data.find(_PAYLOAD_KEY)
    if cut < 0 or not data.endswith(b"}"):
        raise ValidationError("a stream message is not a tuneback event: no payload")
    try:
        head = json.loads(data[:cut] + b"}")
        payload_json = data[cut + len(_PAYLOAD_KEY) : -1].decode()
        parse_payload(head["type"], head["version"], json.loads(payload_json))
        return LogEntry(
            seq=int(head["seq"]),
            id=str(head["id"]),
            type=str(head["type"]),
            version=int(head["version"]),
            project=str(head["project"]),
            recorded_at=datetime.fromisoformat(head["recorded_at"]),
            payload_json=payload_json,
        )
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"a stream message is not a tuneback event: {exc}") from None


def require_nats() -> None:
    try:
        import nats  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "streaming to NATS needs nats-py: pip install 'tuneback[nats]'"
        ) from None


CONNECT_SECONDS = 5.0


async def _quiet(exc: Exception) -> None:
    # nats-py logs every failed attempt with a traceback by default; callers
    # report what matters (the relay warns, a command prints one line).
    log.debug("nats: %s", exc)


async def connect(target: StreamTarget, *, name: str, wait: bool = True) -> NatsClient:
    """A NATS connection, or ConfigurationError within a few seconds if none answers.

    Once connected, it reconnects for ever when ``wait`` (the relay rides out a
    NATS restart), and gives up at once otherwise.
    """
    require_nats()
    import nats

    servers = [s.strip() for s in target.url.split(",")]
    try:
        return await asyncio.wait_for(
            nats.connect(
                servers=servers,
                name=name,
                connect_timeout=2,
                allow_reconnect=wait,
                # nats-py reads 0 as "no limit"; -1 is "no limit" too.
                max_reconnect_attempts=-1 if wait else 1,
                reconnect_time_wait=0.5,
                error_cb=_quiet,
            ),
            timeout=CONNECT_SECONDS,
        )
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {CONNECT_SECONDS:.0f} s"
        raise ConfigurationError(
            f"cannot reach NATS at {target.url}: {reason} "
            "(is nats-server running with JetStream, -js?)"
        ) from None


async def ensure_stream(js: JetStreamContext, target: StreamTarget) -> None:
    """Create the stream if it is missing; an existing one is left as its owner set it."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(target.stream)
        return
    except NotFoundError:
        pass
    await js.add_stream(
        StreamConfig(
            name=target.stream,
            subjects=[target.subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=target.max_age_days * 86_400,
            duplicate_window=target.duplicate_window,
            description="tuneback events: <prefix>.<project>.<event type>, one per committed event",
        )
    )
