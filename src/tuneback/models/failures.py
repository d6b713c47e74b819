"""Failures of remote model servers, worded for the person who has to fix them.

The OpenAI and Hugging Face clients raise different exception types for the same
few situations; both adapters reduce theirs to the situations below so a refused
key or a dead server reads the same whichever backend is in use. Every message
starts with where the request went, says what happened, then what to do.
``details["reason"]`` is the machine-readable name of the situation.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneback.errors import ModelError

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "input is too long",
)


@dataclass(frozen=True)
class Endpoint:
    """Where requests go and how the user configures it, for the messages."""

    spec: str
    url: str
    url_hint: str
    """How to change the URL, e.g. ``--base-url / OPENAI_BASE_URL``."""
    key_hint: str
    """Where the key comes from, e.g. ``OPENAI_API_KEY``."""

    @property
    def where(self) -> str:
        return f"{self.spec} at {self.url}"

    def failure(self, reason: str, message: str, status: int | None = None) -> ModelError:
        details: dict[str, object] = {"backend": self.spec, "url": self.url, "reason": reason}
        if status is not None:
            details["status"] = status
        return ModelError(f"{self.where}: {message}", details=details)

    def connection_failure(self, exc: BaseException) -> ModelError:
        if _refused(exc):
            what = "connection refused"
            reason = "connection_refused"
        else:
            what = f"could not connect ({_root_cause(exc)})"
            reason = "connection_error"
        return self.failure(reason, f"{what} — is the server running? Check {self.url_hint}")

    def timeout_failure(self, timeout: float | None) -> ModelError:
        within = f" within {timeout:g}s" if timeout is not None else ""
        return self.failure(
            "timeout",
            f"no answer{within} — the server is busy or the model is slow; "
            "try again or pass a larger timeout",
        )

    def status_failure(
        self, status: int, server_message: str, code: str | None = None
    ) -> ModelError:
        said = server_message.strip() or "no message"
        if is_context_overflow(status, server_message, code):
            return self.failure(
                "context_length_exceeded",
                "the conversation is too long for the model's context window "
                f"({said}) — start a new chat or shorten the messages",
                status,
            )
        if status == 401:
            return self.failure(
                "unauthorized",
                f"the API key was refused (401: {said}) — set {self.key_hint} to a valid key",
                status,
            )
        if status == 403:
            return self.failure(
                "forbidden",
                f"the API key may not use this model (403: {said}) — check {self.key_hint} "
                "and the model name",
                status,
            )
        if status == 404:
            return self.failure(
                "not_found",
                f"not found (404: {said}) — check the model name and {self.url_hint}",
                status,
            )
        if status == 429:
            return self.failure(
                "rate_limited", f"rate limited (429: {said}) — wait a moment and try again", status
            )
        if status >= 500:
            return self.failure(
                "server_error",
                f"the server failed (HTTP {status}: {said}) — try again, or read the server's log",
                status,
            )
        return self.failure(
            "rejected", f"the server rejected the request (HTTP {status}: {said})", status
        )

    def stream_broken(self, exc: BaseException) -> ModelError:
        return self.failure(
            "stream_broken",
            f"the connection broke mid-answer ({_root_cause(exc)}) — try again",
        )


def is_context_overflow(status: int, message: str, code: str | None) -> bool:
    if code == "context_length_exceeded":
        return True
    lowered = message.lower()
    return status in (400, 413, 422) and any(marker in lowered for marker in _CONTEXT_MARKERS)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _refused(exc: BaseException) -> bool:
    return any(
        isinstance(link, ConnectionRefusedError) or "refused" in str(link).lower()
        for link in _chain(exc)
    )


def _root_cause(exc: BaseException) -> str:
    root = _chain(exc)[-1]
    return str(root) or type(root).__name__
