"""Model specs (``openai:gpt-4o-mini``) to adapters.

A spec is ``name`` or ``name:argument``; everything after the first colon is the
argument, so it may hold colons itself (``python:pkg.mod:fn``, ``gguf:C:/m.gguf``).
The name selects a factory, called as ``factory(argument, **kwargs)`` where
``argument`` is ``None`` for a bare name.

Factories come from two places that work the same way: the built-in table below
and the ``tuneback.models`` entry-point group, which is how a third-party package
adds a backend. Built-ins are listed as ``module:attribute`` strings, exactly like
entry points, so no backend module is imported until its spec is resolved. On a
name clash the built-in wins, so installing a plugin never silently changes what
``openai:`` means.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from tuneback.errors import ConfigurationError
from tuneback.models.base import ModelAdapter

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tuneback.models"

ModelFactory = Callable[..., ModelAdapter]
"""``(argument: str | None, **kwargs) -> ModelAdapter``."""

BUILTIN_BACKENDS: dict[str, str] = {
    "echo": "tuneback.models.echo:create_echo",
    "gguf": "tuneback.models.local:create_gguf",
    "hf": "tuneback.models.hf_inference:create_hf",
    "local": "tuneback.models.local:create_local",
    "openai": "tuneback.models.openai_compat:create_openai",
    "python": "tuneback.models.python_callable:create_python",
    "scripted": "tuneback.models.scripted:create_scripted",
    "transformers": "tuneback.models.transformers_dir:create_transformers",
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``name:argument`` at the first colon; an empty argument counts as none."""
    name, _, argument = spec.strip().partition(":")
    if not _NAME.match(name):
        raise ConfigurationError(
            f"invalid model spec {spec!r}: expected name or name:argument, e.g. openai:gpt-4o-mini",
            details={"spec": spec, "known": available_backends()},
        )
    return name, argument or None


def _backend_targets() -> dict[str, str]:
    targets = dict(BUILTIN_BACKENDS)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in targets:
            targets[point.name] = point.value
        elif point.value != targets[point.name]:
            logger.warning(
                "ignoring model backend %r from entry point %s: the name is built in",
                point.name,
                point.value,
            )
    return targets


def available_backends() -> list[str]:
    """Every backend name a spec may start with, sorted."""
    return sorted(_backend_targets())


def _load_target(target: str) -> ModelFactory:
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def backend_factory(name: str) -> ModelFactory:
    """The factory registered under ``name``."""
    targets = _backend_targets()
    if name not in targets:
        known = sorted(targets)
        raise ConfigurationError(
            f"unknown model backend {name!r}; known backends: {', '.join(known)}",
            details={"backend": name, "known": known},
        )
    try:
        return _load_target(targets[name])
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"model backend {name!r} ({targets[name]}) cannot be loaded: {exc}"
        ) from exc


_LABELLED = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.+)$")


def resolve_labelled(text: str) -> ModelAdapter:
    """A spec, or ``NAME=SPEC`` (``a=openai:gpt-4o-mini``): the model shown as NAME on the pages.

    The runs still record the spec, so votes and rankings name the real model.
    """
    found = _LABELLED.match(text.strip())
    if found is None:
        return resolve_model(text)
    adapter = resolve_model(found.group(2))
    adapter.name = found.group(1)
    return adapter


def resolve_model(spec: str, **kwargs: Any) -> ModelAdapter:
    """Build the adapter a spec names; it is not loaded yet (see ``start_loading``)."""
    name, argument = parse_spec(spec)
    factory = backend_factory(name)
    try:
        inspect.signature(factory).bind(argument, **kwargs)
    except TypeError as exc:
        raise ConfigurationError(
            f"model {spec!r} does not take these options: {exc}",
            details={"spec": spec, "options": sorted(kwargs)},
        ) from None
    except ValueError:  # pragma: no cover - a factory without a signature: just call it
        pass
    adapter = factory(argument, **kwargs)
    if not isinstance(adapter, ModelAdapter):
        raise ConfigurationError(
            f"model backend {name!r} returned {type(adapter).__name__}, not a ModelAdapter"
        )
    return adapter
