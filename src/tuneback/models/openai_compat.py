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

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ConfigurationError, ModelError, ModelUnavailableError
from tuneback.models.base import ModelAdapter, ModelOptions, Usage, messages_as_dicts
from tuneback.models.failures import Endpoint

OPENAI_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "sk-no-key-required"
INSTALL_HINT = "pip install 'tuneback[openai]'"


def transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP libraries' own errors, which escape SDK streams mid-answer."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append(module.HTTPError)
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
        try:
            stream = self._client.chat.completions.create(**request)
        except self._openai.OpenAIError as exc:
            raise self._map_error(exc) from exc
        usage: Usage | None = None
        try:
            for chunk in stream:
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.index == 0 and choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
        except self._openai.OpenAIError as exc:
            raise self._map_error(exc) from exc
        except self._transport_errors as exc:
            raise self.endpoint.stream_broken(exc) from exc
        finally:
            # Closing the response tells the server to stop generating.
            stream.close()
        if usage is not None:
            yield usage


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
