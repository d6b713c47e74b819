"""Settings: every one is read from a ``TUNEBACK_*`` environment variable and documented here once.

``tuneback settings`` prints this table; the README's settings section is checked
against it by a test.
"""

from __future__ import annotations

from ipaddress import ip_network
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tuneback.storage import default_sqlite_url


class Settings(BaseSettings):
    """Where tuneback keeps its data and how it serves it."""

    model_config = SettingsConfigDict(env_prefix="TUNEBACK_", extra="forbid")

    database_url: str = Field(
        default_factory=default_sqlite_url,
        description=(
            "Where the data lives: sqlite:///path/file.db or postgresql://user@host/db. "
            "Default: a SQLite file in the user data directory."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `tuneback serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `tuneback serve` listens on.")
    model: str = Field(
        default="local",
        description="Model spec the chat uses: local, echo, openai:<model>, gguf:<path>, …",
    )
    project: str = Field(
        default="default", description="Project that data goes to when none is named."
    )
    auth: bool = Field(
        default=True,
        description=(
            "Require an API key on /api/v1 (tuneback keys create). "
            "`tuneback serve --no-auth` turns it off, allowed on loopback only."
        ),
    )
    proxy_any_model: bool = Field(
        default=False,
        description=(
            "The OpenAI-compatible proxy answers a request that names no model, or one it "
            "does not offer, with the default model instead of an error; the run keeps the "
            "name asked for. `tuneback serve --any-model` turns it on."
        ),
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body the server reads; bigger ones get 413.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="How much the server logs."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Host names the server answers to, comma-separated; a request for any other "
            "host gets 400 (this stops DNS rebinding). Default: 127.0.0.1, localhost, ::1 "
            "and TUNEBACK_HOST; on 0.0.0.0 also this machine's name and addresses. "
            "* admits any host."
        ),
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "The address people reach the server at, e.g. https://feedback.example.com: "
            "feedback links are built on it. Default: the address a request came to when "
            "its host is allowed, else http://TUNEBACK_HOST:TUNEBACK_PORT."
        ),
    )

    rate_limit: str = Field(
        default="1200/minute",
        description=(
            "Writes (POST, PUT, PATCH, DELETE) each API key may make, or each client address "
            "that sends no valid key, e.g. 600/minute or 10/second;500/hour; more get 429 "
            "with Retry-After. Counted in each server process. off: no limit."
        ),
    )
    rate_limit_exempt: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description=(
            "Client addresses or networks (10.0.0.0/8) never rate-limited, comma-separated. "
            "Default: loopback, so programs on the server's own machine (tests, benchmarks, "
            "a local app) are not throttled. Empty: limit every client."
        ),
    )

    compare_daily_votes: int = Field(
        default=200,
        ge=0,
        description=(
            "Comparisons each person may make per UTC day on the compare page (/compare); "
            "more get 429 until midnight UTC. A re-vote replaces a vote and does not count. "
            "0: no limit."
        ),
    )

    nats_url: str | None = Field(
        default=None,
        description=(
            "NATS server to stream every committed event to (JetStream), e.g. "
            "nats://127.0.0.1:4222: `tuneback serve` then runs the outbox relay "
            "(one across all workers), as `tuneback relay` does on its own. "
            "Unset: no streaming."
        ),
    )
    nats_stream: str = Field(
        default="TUNEBACK",
        description=(
            "JetStream stream the relay publishes to (created if missing); one stream "
            "per tuneback database."
        ),
    )
    nats_subject: str = Field(
        default="tuneback",
        description=(
            "First token of every subject: events go to <this>.<project>.<event type>, "
            "and the stream holds <this>.>."
        ),
    )

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        for server in value.split(","):
            parts = urlsplit(server.strip())
            if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.hostname:
                raise ValueError(f"{server!r} is not a NATS address like nats://127.0.0.1:4222")
        return value

    @field_validator("nats_stream", "nats_subject")
    @classmethod
    def _check_nats_name(cls, value: str) -> str:
        if not value or any(ch in value for ch in " .*>\t\r\n/\\"):
            raise ValueError(f"{value!r} must be one word without spaces, dots, * or >")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "off":
            return "off"
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate like 600/minute or 10/second;500/hour (or off)"
            ) from None
        return value

    @field_validator("rate_limit_exempt", mode="before")
    @classmethod
    def _split_exempt(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for part in value:
                try:
                    ip_network(str(part), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{part!r} is not an address or network like 10.0.0.0/8"
                    ) from None
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) address like https://example.com")
        return value.rstrip("/")


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        derived = field.default_factory is not None or field.default is None
        default = "(see meaning)" if derived else str(field.default)
        rows.append((f"TUNEBACK_{name.upper()}", default, field.description or ""))
    return rows
