"""Feedback configs: what each feedback key of a project accepts; feedback breaking it is a 422."""

from __future__ import annotations

from tuneback.domain.feedback import normalize_key
from tuneback.server.access import key_rule
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import (
    FeedbackConfigPublic,
    FeedbackConfigSet,
    FeedbackConfigsPublic,
)
from tuneback.server.auth import CallerDep
from tuneback.server.deps import ServicesDep

router = resource_router("/feedback-configs", "feedback configs")


@router.get("", summary="The project's feedback configs, by key", dependencies=[key_rule("read")])
def list_configs(
    caller: CallerDep, services: ServicesDep, project: str | None = None
) -> FeedbackConfigsPublic:
    name = caller.project(project)
    data = [
        FeedbackConfigPublic(project=name, key=key, config=config)
        for key, config in services.store.feedback_configs(name).items()
    ]
    return FeedbackConfigsPublic(data=data, count=len(data))


@router.put(
    "/{key}", summary="Declare what a feedback key accepts", dependencies=[key_rule("manage")]
)
def set_config(
    key: str,
    body: FeedbackConfigSet,
    caller: CallerDep,
    services: ServicesDep,
    project: str | None = None,
) -> FeedbackConfigPublic:
    name = caller.project(project)
    key = str(normalize_key(key))
    config = services.feedback.set_config(name, key, body.config)
    return FeedbackConfigPublic(project=name, key=key, config=config)
