"""``python:<module>:<callable>``: any function the user writes, as a model.

The calling convention, kept deliberately plain so the function needs no tuneback
import::

    def reply(messages: list[dict[str, str]], **options) -> str | Iterable[str]:
        ...

* ``messages`` is a list of ``{"role": ..., "content": ...}`` dicts (a fresh copy
  per call, safe to mutate).
* ``options`` are the :class:`~tuneback.models.base.ModelOptions` fields the caller
  set (``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``), passed by
  keyword. A function receives only the ones its signature names, or all of them
  if it takes ``**kwargs``; a function of ``messages`` alone gets only messages.
* It returns the whole reply as a ``str``, or any iterable of ``str`` chunks (a
  generator streams). An iterable may also yield one ``Usage`` with real counts;
  otherwise usage is estimated.

``<module>`` is a dotted import path, or a path to a ``.py`` file;
``<callable>`` may be dotted (``Bot.reply`` on a class-level attribute).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ConfigurationError, ModelError
from tuneback.models.base import ModelAdapter, ModelOptions, Usage, messages_as_dicts

UserFunction = Callable[..., Any]


def _accepted_options(fn: UserFunction) -> set[str] | None:
    """Option names ``fn`` accepts by keyword; ``None`` means all (``**kwargs``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    names: set[str] = set()
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            names.add(parameter.name)
    return names


class PythonCallableModel(ModelAdapter):
    """Streams what a user function returns or yields."""

    def __init__(
        self,
        fn: UserFunction,
        *,
        spec: str,
        name: str | None = None,
        context_window: int = 4096,
    ) -> None:
        super().__init__(
            spec=spec, name=name or getattr(fn, "__name__", spec), context_window=context_window
        )
        self.fn = fn
        self._accepted = _accepted_options(fn)

    def _call_options(self, options: ModelOptions) -> dict[str, Any]:
        given = options.as_kwargs()
        if self._accepted is None:
            return given
        return {key: value for key, value in given.items() if key in self._accepted}

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        try:
            result = self.fn(messages_as_dicts(messages), **self._call_options(options))
        except ModelError:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        if isinstance(result, str):
            yield result
            return
        if not isinstance(result, Iterable):
            raise ModelError(
                f"{self.spec} returned {type(result).__name__}; it must return a str "
                "or yield str chunks",
                details={"backend": self.spec, "reason": "bad_return"},
            )
        chunks = iter(result)
        try:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except ModelError:
                    raise
                except Exception as exc:
                    raise self._failure(exc) from exc
                if not isinstance(chunk, str | Usage):
                    raise ModelError(
                        f"{self.spec} yielded {type(chunk).__name__}; chunks must be str",
                        details={"backend": self.spec, "reason": "bad_return"},
                    )
                yield chunk
        finally:
            # A cancel closes the user's generator too, so its own cleanup runs.
            close = getattr(chunks, "close", None)
            if callable(close):
                close()

    def _failure(self, exc: Exception) -> ModelError:
        return ModelError(
            f"{self.spec} raised {type(exc).__name__}: {exc}",
            details={"backend": self.spec, "reason": "user_function_error"},
        )


def _import_module(target: str) -> Any:
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise FileNotFoundError(target)
        module_name = f"tuneback_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - .py files always load
            raise ConfigurationError(f"python:{target}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(target)


def load_callable(target: str) -> UserFunction:
    """Import ``module:callable`` (or ``file.py:callable``)."""
    module_part, _, attribute = target.rpartition(":")
    if not module_part or not attribute:
        raise ConfigurationError(
            f"python:{target}: expected python:<module>:<callable>, e.g. python:mybot.chat:reply"
        )
    try:
        obj: Any = _import_module(module_part)
    except FileNotFoundError:
        raise ConfigurationError(f"python:{target}: no such file") from None
    except Exception as exc:
        raise ConfigurationError(
            f"python:{target}: cannot import {module_part!r}: {type(exc).__name__}: {exc} "
            "— is it on PYTHONPATH (or run from its directory)?"
        ) from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(
                f"python:{target}: {module_part!r} has no attribute {attribute!r}"
            ) from None
    if not callable(obj):
        raise ConfigurationError(f"python:{target}: {attribute!r} is not callable")
    return obj  # type: ignore[no-any-return]


def adapter_from_callable(fn: UserFunction | ModelAdapter, name: str | None = None) -> ModelAdapter:
    """Wrap a function or generator function as a model (an adapter passes through)."""
    if isinstance(fn, ModelAdapter):
        return fn
    if not callable(fn):
        raise ConfigurationError(
            f"a model must be a callable or a ModelAdapter, got {type(fn).__name__}"
        )
    module = getattr(fn, "__module__", None) or "__main__"
    qualname = getattr(fn, "__qualname__", None) or type(fn).__name__
    return PythonCallableModel(fn, spec=f"python:{module}:{qualname}", name=name)


def create_python(
    argument: str | None = None, *, name: str | None = None, context_window: int = 4096
) -> PythonCallableModel:
    """Factory for ``python:<module>:<callable>``."""
    if not argument:
        raise ConfigurationError("python needs a target: python:<module>:<callable>")
    fn = load_callable(argument)
    return PythonCallableModel(
        fn, spec=f"python:{argument}", name=name, context_window=context_window
    )
