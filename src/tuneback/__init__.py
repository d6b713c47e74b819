"""tuneback: collect human feedback on language-model answers and turn it into better models."""

from tuneback.__about__ import __version__
from tuneback.client import AsyncClient, Client
from tuneback.domain import (
    ChatMessage,
    Comparison,
    Conversation,
    Dataset,
    DatasetItem,
    Feedback,
    Message,
    Run,
    normalize_score,
)
from tuneback.errors import (
    ConfigurationError,
    ConflictError,
    ModelError,
    ModelUnavailableError,
    NotFoundError,
    StorageError,
    TuneBackError,
    ValidationError,
)
from tuneback.launch import launch

__all__ = [
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
