"""API keys over the API: a key holder can make more keys for its project, list and revoke them."""

from __future__ import annotations

from tuneback.server.access import key_rule
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from tuneback.server.auth import CallerDep
from tuneback.server.deps import ServicesDep

router = resource_router("/keys", "keys")


@router.post(
    "", status_code=201, summary="Make an API key (shown once)", dependencies=[key_rule("manage")]
)
def create_key(body: ApiKeyCreate, caller: CallerDep, services: ServicesDep) -> ApiKeyCreated:
    made = services.keys.create(
        caller.project(body.project), name=body.name, role=body.role, actor=caller.key_id
    )
    return ApiKeyCreated(key=made.key, **made.record.__dict__)


@router.get("", summary="API keys (never the keys themselves)", dependencies=[key_rule("manage")])
def list_keys(caller: CallerDep, services: ServicesDep) -> ApiKeysPublic:
    data = [ApiKeyPublic.model_validate(k.__dict__) for k in services.keys.list(caller.scope)]
    return ApiKeysPublic(data=data, count=len(data))


@router.delete("/{key_id}", summary="Revoke an API key", dependencies=[key_rule("manage")])
def revoke_key(key_id: str, caller: CallerDep, services: ServicesDep) -> ApiKeyPublic:
    caller.check(services.keys.access.get_key(key_id).project, "API key", key_id)
    revoked = services.keys.revoke(key_id, actor=caller.key_id)
    return ApiKeyPublic.model_validate(revoked.__dict__)
