"""The public façade is a contract: everything in __all__ exists, and the list is sorted."""

from pathlib import Path

import tuneback
import tuneback.domain
import tuneback.storage
from tuneback.config import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff keeps __all__ in: CONSTANTS, then Classes, then the rest.
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_and_complete() -> None:
    for module in (tuneback, tuneback.domain, tuneback.storage):
        assert list(module.__all__) == sorted(module.__all__, key=_isort_key), module.__name__
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_the_facade_exports() -> None:
    assert tuneback.__all__ == [
        "AsyncClient",
        "ChatMessage",
        "Client",
        "Comparison",
        "ConfigurationError",
        "ConflictError",
        "Conversation",
        "Dataset",
        "DatasetItem",
        "Feedback",
        "Message",
        "ModelError",
        "ModelUnavailableError",
        "NotFoundError",
        "Run",
        "StorageError",
        "TuneBackError",
        "ValidationError",
        "__version__",
        "launch",
        "normalize_score",
    ]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    for name, _default, description in settings_table():
        assert name in readme, f"README does not mention {name}"
        assert description, f"{name} has no description"
