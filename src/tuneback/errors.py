"""The one exception tree of tuneback.

Every error that tuneback raises on purpose derives from :class:`TuneBackError`.
The server renders each as ``{"error": {"type", "message", "details"}}`` with the
status code named here; the CLI prints ``error: <message>`` and exits non-zero.

::

    TuneBackError                     500  something tuneback could not do
    ├── ValidationError               422  input broke a rule (bad payload, score out of range)
    ├── AuthenticationError           401  no valid key, session or password was presented
    ├── PermissionDeniedError         403  the caller is known but its role may not do this
    ├── NotFoundError                 404  the thing named does not exist
    ├── ConflictError                 409  an id is taken by something else, a locked rating
    ├── RateLimitedError              429  too many writes from one key or address; retry later
    ├── ConfigurationError            400  a setting or option cannot work (bad URL, unknown model)
    ├── StorageError                  503  the database could not be reached or refused the write
    └── ModelError                    502  the model backend failed (connection, auth, timeout)
        └── ModelUnavailableError     503  the model is still loading or not installed
"""

from __future__ import annotations

from typing import Any, ClassVar


class TuneBackError(Exception):
    """Base of every error tuneback raises on purpose."""

    status_code: ClassVar[int] = 500
    type: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The one wire shape of an error."""
        return {"error": {"type": self.type, "message": self.message, "details": self.details}}


class ValidationError(TuneBackError):
    status_code = 422
    type = "validation_error"


class AuthenticationError(TuneBackError):
    status_code = 401
    type = "unauthorized"


class PermissionDeniedError(TuneBackError):
    status_code = 403
    type = "forbidden"


class NotFoundError(TuneBackError):
    status_code = 404
    type = "not_found"


class ConflictError(TuneBackError):
    status_code = 409
    type = "conflict"


class RateLimitedError(TuneBackError):
    """Over a rate limit: ``retry_after`` says in how many seconds to try again."""

    status_code = 429
    type = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ConfigurationError(TuneBackError):
    status_code = 400
    type = "configuration_error"


class StorageError(TuneBackError):
    status_code = 503
    type = "storage_error"


class ModelError(TuneBackError):
    status_code = 502
    type = "model_error"


class ModelUnavailableError(ModelError):
    status_code = 503
    type = "model_unavailable"


__all__ = [
    "ConfigurationError",
    "ConflictError",
    "ModelError",
    "ModelUnavailableError",
    "NotFoundError",
    "RateLimitedError",
    "StorageError",
    "TuneBackError",
    "ValidationError",
]
