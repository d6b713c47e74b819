"""Who is calling: an API key (``Authorization: Bearer tb_…`` or ``X-API-Key``) or nobody.

A key belongs to one project: it reads and writes that project only, and a
request that names another project is refused. With ``settings.auth`` off
(``tuneback serve --no-auth``, loopback only) every caller may use every
project, and writes without a project go to ``settings.project``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tuneback.domain.access import Principal
from tuneback.errors import NotFoundError
from tuneback.services.keys import KeyService
from tuneback.storage.keys import ApiKeyRecord

KEY_HINT = (
    "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
    "(create one with: tuneback keys create --project NAME)"
)


@dataclass(frozen=True)
class Caller:
    """The caller of one request; ``key`` is None when the server runs without auth."""

    key: ApiKeyRecord | None
    default_project: str

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def principal(self) -> Principal:
        """The key as a principal of its role in its project (without auth: an owner of all)."""
        if self.key is None:
            return Principal(name="local", role="owner", kind="key")
        return Principal(
            name=f"key:{self.key.id}",
            role=self.key.role,
            kind="key",
            projects=frozenset({self.key.project}),
        )

    @property
    def scope(self) -> str | None:
        """The only project this caller may see; None means all of them."""
        return self.key.project if self.key else None

    def project(self, asked: str | None = None) -> str:
        """The project to write into: the key's, unless the body asked for one it may use."""
        if self.key is None:
            return asked or self.default_project
        if asked is not None and asked != self.key.project:
            raise HTTPException(
                403,
                f"this API key belongs to project {self.key.project!r}, not {asked!r}",
            )
        return self.key.project

    def check(self, project: str, what: str, object_id: str) -> None:
        """Hide other projects' objects: to this caller they do not exist."""
        if self.key is not None and project != self.key.project:
            raise NotFoundError(f"no {what} with id {object_id}")


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message)


# How the OpenAPI document says a key is sent; ``authenticate`` reads the headers
# itself, and ``server.api.openapi`` adds these to every operation a key guards.
# (As dependencies they would cost every API request two more to solve.)
SECURITY_SCHEMES = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: tuneback keys create",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key",
    },
}
KEY_SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]


async def authenticate(request: Request) -> Caller:
    """Who calls, from the key presented; found once per request, however many ask."""
    found: Caller | None = getattr(request.state, "caller", None)
    if found is None:
        found = request.state.caller = await _authenticate(request)
    return found


async def _authenticate(request: Request) -> Caller:
    services = request.app.state.services
    settings = services.settings
    if not settings.auth:
        return Caller(key=None, default_project=settings.project)
    key = presented_key(request)
    if key is None:
        raise unauthorized(f"this endpoint needs an API key: {KEY_HINT}")
    keys: KeyService = request.app.state.api.keys
    record = keys.cached(key)
    if record is None:
        record = await run_in_threadpool(keys.verify, key)
    if record is None:
        raise unauthorized(f"the API key is unknown or revoked: {KEY_HINT}")
    return Caller(key=record, default_project=record.project)


CallerDep = Annotated[Caller, Depends(authenticate)]
