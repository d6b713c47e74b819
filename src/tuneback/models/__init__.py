"""Model adapters: one streaming contract, many backends.

``resolve_model("openai:gpt-4o-mini")`` builds an adapter from a spec string;
``adapter.stream(messages, options)`` yields text chunks and then one ``Usage``.
Backend modules (and the libraries they wrap) are imported only when a spec that
needs them is resolved or loaded.
"""

from tuneback.models.base import (
    ModelAdapter,
    ModelOptions,
    ModelStatus,
    Usage,
    complete,
    estimate_tokens,
    parse_options,
)
from tuneback.models.echo import EchoModel
from tuneback.models.python_callable import PythonCallableModel, adapter_from_callable
from tuneback.models.registry import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    ModelFactory,
    available_backends,
    parse_spec,
    resolve_model,
)
from tuneback.models.scripted import ScriptedCall, ScriptedModel

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "EchoModel",
    "ModelAdapter",
    "ModelFactory",
    "ModelOptions",
    "ModelStatus",
    "PythonCallableModel",
    "ScriptedCall",
    "ScriptedModel",
    "Usage",
    "adapter_from_callable",
    "available_backends",
    "complete",
    "estimate_tokens",
    "parse_options",
    "parse_spec",
    "resolve_model",
]
