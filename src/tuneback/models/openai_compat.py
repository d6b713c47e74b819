"""``openai:<model>``: OpenAI and every server that speaks its chat API.

vLLM, TGI, Ollama, llama.cpp's server and LM Studio all serve
``/v1/chat/completions``; point ``base_url`` (or ``OPENAI_BASE_URL``) at them. The
key comes from ``api_key`` or ``OPENAI_API_KEY``; local servers usually want none,
so a placeholder is sent when a non-OpenAI URL is configured without one.

The ``openai`` package is imported in :meth:`OpenAIModel._load` (in the background)
so that importing tuneback stays fast and works without it installed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

import httpx

from tuneback.domain.conversation import ChatMessage
from tuneback.domain.json_encoding import json_loads
from tuneback.errors import ConfigurationError, ModelError, ModelUnavailableError
from tuneback.models.base import ModelAdapter, ModelOptions, Usage, messages_as_dicts
from tuneback.models.failures import Endpoint

OPENAI_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "sk-no-key-required"
INSTALL_HINT = "pip install 'tuneback[openai]'"


def transport_errors(name: str = "HTTPError") -> tuple[type[BaseException], ...]:
    """The HTTP libraries' own errors of one kind, which a stream raises mid-answer."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append(getattr(module, name))
    return tuple(found)


class OpenAIModel(ModelAdapter):
    """Chat completions streamed from an OpenAI-compatible server."""

    needs_loading = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        context_window: int = 8192,
        include_usage: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(spec=f"openai:{model}", name=name or model, context_window=context_window)
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip(
            "/"
        )
        self.timeout = timeout
        self.max_retries = max_retries
        # Servers that predate stream_options reject it; they can turn it off.
        self.include_usage = include_usage
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY")
        key_source = "the api_key option" if api_key else "OPENAI_API_KEY"
        self.endpoint = Endpoint(
            spec=self.spec,
            url=self.base_url,
            url_hint="--base-url / OPENAI_BASE_URL",
            key_hint=key_source,
        )
        self._client: Any = None
        self._openai: Any = None
        self._transport_errors: tuple[type[BaseException], ...] = ()
        self._timeout_errors: tuple[type[BaseException], ...] = ()

    def _load(self) -> None:
        try:
            import openai
        except ImportError:
            raise ModelUnavailableError(
                f"{self.spec}: the openai package is not installed — {INSTALL_HINT}"
            ) from None
        key = self._api_key
        if not key:
            if self.base_url == OPENAI_BASE_URL:
                raise ModelUnavailableError(
                    f"{self.spec}: OPENAI_API_KEY is not set — export it, or point "
                    "--base-url / OPENAI_BASE_URL at a local server"
                )
            key = PLACEHOLDER_KEY
        self._openai = openai
        self._transport_errors = transport_errors()
        self._timeout_errors = transport_errors("TimeoutException")
        self._client = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
        )

    def _map_error(self, exc: Exception) -> ModelError:
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return self.endpoint.timeout_failure(self.timeout)
        if isinstance(exc, openai.APIConnectionError):
            return self.endpoint.connection_failure(exc)
        if isinstance(exc, openai.APIStatusError):
            body = exc.body
            said = body.get("message") if isinstance(body, dict) else None
            return self.endpoint.status_failure(
                exc.status_code, str(said or exc.message), getattr(exc, "code", None)
            )
        return self.endpoint.failure("backend_error", f"{type(exc).__name__}: {exc}")

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages_as_dicts(messages),
            "stream": True,
            **options.as_kwargs(),
        }
        if self.include_usage:
            request["stream_options"] = {"include_usage": True}
        # The SDK's own stream stops reading at ``[DONE]`` and closes the response
        # before the body's end, so its connection cannot be used again: every
        # answer would open a new one (against a remote server, a TLS handshake)
        # before its first token. Here the raw response (the SDK's documented way
        # to post a request as is) is read to its end, which hands the connection
        # back to the client's pool; closed early (the caller stopped), it tells
        # the server to stop generating. Auth, retries and status errors stay the
        # SDK's; posting the body as is skips its typed parameters' conversion.
        try:
            response = self._client.post(
                "/chat/completions", cast_to=httpx.Response, body=request, stream=True
            )
        except self._openai.OpenAIError as exc:
            raise self._map_error(exc) from exc
        usage: Usage | None = None
        try:
            for line in response.iter_lines():
                try:
                    chunk = _event_data(line)
                except ValueError:
                    raise self.endpoint.failure(
                        "backend_error", f"the server sent a line that is not a chunk: {line!r}"
                    ) from None
                if chunk is None:
                    continue
                if chunk.get("error"):
                    raise self._stream_error(chunk["error"])
                usage = _usage(chunk.get("usage")) or usage
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if choice.get("index") == 0 and delta.get("content"):
                        yield delta["content"]
        except self._timeout_errors as exc:
            raise self.endpoint.timeout_failure(self.timeout) from exc
        except self._transport_errors as exc:
            raise self.endpoint.stream_broken(exc) from exc
        finally:
            response.close()
        if usage is not None:
            yield usage

    def _stream_error(self, error: Any) -> ModelError:
        """An ``{"error": …}`` event in the middle of a stream, as the SDK would raise it."""
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        return self.endpoint.failure("backend_error", f"APIError: {message}")


def _usage(counted: Any) -> Usage | None:
    if not isinstance(counted, dict):
        return None
    prompt, completion = counted.get("prompt_tokens"), counted.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def _event_data(line: str) -> dict[str, Any] | None:
    """The JSON object of a server-sent ``data:`` line; None for other lines and ``[DONE]``.

    Raises ValueError when the data is not a chunk: not a JSON object, or choices
    that are not a list of objects.
    """
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    chunk = json_loads(data)
    if not isinstance(chunk, dict):
        raise ValueError(f"not a JSON object: {data!r}")
    choices = chunk.get("choices")
    if choices is not None and not (
        isinstance(choices, list)
        and all(isinstance(c, dict) and isinstance(c.get("delta") or {}, dict) for c in choices)
    ):
        raise ValueError(f"choices are not a list of choices: {data!r}")
    return chunk


def create_openai(
    argument: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    context_window: int = 8192,
    include_usage: bool = True,
    name: str | None = None,
) -> OpenAIModel:
    """Factory for ``openai:<model>``."""
    if not argument:
        raise ConfigurationError(
            "openai needs a model name: openai:<model>, e.g. openai:gpt-4o-mini"
        )
    return OpenAIModel(
        argument,
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=max_retries,
        context_window=context_window,
        include_usage=include_usage,
        name=name,
    )
