"""The models a deployment offers, by spec, resolved once and shared by every request."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from tuneback.errors import NotFoundError
from tuneback.models import ModelAdapter
from tuneback.models.registry import resolve_labelled


class ModelCatalog:
    """The configured models; the first is the default.

    Only configured specs can be used, so a chat page cannot make the server load
    an arbitrary model or call an arbitrary URL.
    """

    def __init__(self, models: Iterable[ModelAdapter | str]) -> None:
        self._adapters: dict[str, ModelAdapter] = {}
        self._lock = threading.Lock()
        for model in models:
            adapter = resolve_labelled(model) if isinstance(model, str) else model
            self._adapters[adapter.spec] = adapter
        if not self._adapters:
            raise ValueError("a model catalog needs at least one model")

    @property
    def default(self) -> ModelAdapter:
        return next(iter(self._adapters.values()))

    @property
    def specs(self) -> list[str]:
        return list(self._adapters)

    def __iter__(self) -> Iterator[ModelAdapter]:
        return iter(list(self._adapters.values()))

    def get(self, spec: str | None = None) -> ModelAdapter:
        """The adapter for ``spec`` (the default when None)."""
        if spec is None:
            return self.default
        adapter = self._adapters.get(spec)
        if adapter is None:
            raise NotFoundError(
                f"model {spec!r} is not offered here; choose one of: {', '.join(self.specs)}",
                details={"available": self.specs},
            )
        return adapter

    def start_loading(self) -> None:
        """Warm every model up in the background (the local one takes a moment)."""
        for adapter in self._adapters.values():
            adapter.start_loading()
