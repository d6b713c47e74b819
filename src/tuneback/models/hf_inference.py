"""``hf:<model id or endpoint URL>``: Hugging Face inference through ``huggingface_hub``.

``hf:meta-llama/Llama-3.1-8B-Instruct`` goes through Hugging Face's inference
providers; ``hf:http://tgi.internal:8080`` talks to a Text Generation Inference (or
any OpenAI-compatible) server directly. The token comes from the ``token`` option
or ``HF_TOKEN``.

Each stream gets its own ``InferenceClient``: the client keeps the open streaming
response on its exit stack, so closing that client is what closes the connection
when the caller cancels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ConfigurationError, ModelError, ModelUnavailableError
from tuneback.models.base import ModelAdapter, ModelOptions, Usage, messages_as_dicts
from tuneback.models.failures import Endpoint, is_context_overflow

INSTALL_HINT = "pip install 'tuneback[hf]'"
HF_ROUTER_URL = "https://router.huggingface.co"


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


class HuggingFaceModel(ModelAdapter):
    """Chat completions streamed by ``huggingface_hub.InferenceClient``."""

    needs_loading = True

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        provider: str | None = None,
        context_window: int = 8192,
        name: str | None = None,
    ) -> None:
        display = name or (target if _is_url(target) else target.rsplit("/", 1)[-1])
        super().__init__(spec=f"hf:{target}", name=display, context_window=context_window)
        self.target = target
        self.timeout = timeout
        self.provider = provider
        self._token = token or os.environ.get("HF_TOKEN")
        self.endpoint = Endpoint(
            spec=self.spec,
            url=target if _is_url(target) else HF_ROUTER_URL,
            url_hint="the endpoint URL in the hf: spec",
            key_hint="the token option" if token else "HF_TOKEN",
        )
        self._hub: Any = None
        self._httpx: Any = None

    def _load(self) -> None:
        try:
            import huggingface_hub
            import huggingface_hub.errors
        except ImportError:
            raise ModelUnavailableError(
                f"{self.spec}: huggingface_hub is not installed — {INSTALL_HINT}"
            ) from None
        self._hub = huggingface_hub
        # huggingface_hub's own HTTP library; its errors escape the client mid-stream.
        import httpx2

        self._httpx = httpx2

    def _client(self) -> Any:
        return self._hub.InferenceClient(
            model=self.target, token=self._token, timeout=self.timeout, provider=self.provider
        )

    def _map_error(self, exc: Exception, *, started: bool) -> ModelError:
        errors = self._hub.errors
        httpx = self._httpx
        if isinstance(exc, errors.InferenceTimeoutError | httpx.TimeoutException):
            return self.endpoint.timeout_failure(self.timeout)
        if isinstance(exc, errors.HfHubHTTPError):
            response = exc.response
            message, code = _error_body(response)
            said = message or exc.server_message or _first_line(str(exc))
            return self.endpoint.status_failure(response.status_code, said, code)
        if isinstance(exc, errors.TextGenerationError):
            # TGI reports validation and overload errors inside the event stream.
            message = str(exc)
            if is_context_overflow(422, message, None):
                return self.endpoint.status_failure(422, message)
            return self.endpoint.failure("generation_error", f"generation failed: {message}")
        if isinstance(exc, httpx.TransportError):
            if started:
                return self.endpoint.stream_broken(exc)
            return self.endpoint.connection_failure(exc)
        return self.endpoint.failure("backend_error", f"{type(exc).__name__}: {exc}")

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        client = self._client()
        usage: Usage | None = None
        started = False
        try:
            stream = client.chat_completion(
                messages_as_dicts(messages),
                stream=True,
                stream_options={"include_usage": True},
                **options.as_kwargs(),
            )
            started = True
            for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if choice.index == 0 and delta is not None and delta.content:
                        yield delta.content
        except Exception as exc:
            raise self._map_error(exc, started=started) from exc
        finally:
            client.close()
        if usage is not None:
            yield usage


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), text)


def _error_body(response: Any) -> tuple[str | None, str | None]:
    """Message and code of an error body.

    OpenAI-style servers send ``{"error": {"message", "code"}}``, TGI ``{"error": str}``.
    """
    try:
        body = response.json()
    except Exception:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return None, None
    message, code = error.get("message"), error.get("code")
    return (str(message) if message else None), (str(code) if code is not None else None)


def create_hf(
    argument: str | None = None,
    *,
    token: str | None = None,
    timeout: float = 60.0,
    provider: str | None = None,
    context_window: int = 8192,
    name: str | None = None,
) -> HuggingFaceModel:
    """Factory for ``hf:<model id or endpoint URL>``."""
    if not argument:
        raise ConfigurationError(
            "hf needs a model id or an endpoint URL: hf:<org>/<model> or hf:http://host:port"
        )
    return HuggingFaceModel(
        argument,
        token=token,
        timeout=timeout,
        provider=provider,
        context_window=context_window,
        name=name,
    )
