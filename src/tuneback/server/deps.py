"""What request handlers get: the services, injected through FastAPI dependencies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from tuneback.config import Settings
from tuneback.errors import ValidationError
from tuneback.services.accounts import AccountService
from tuneback.services.battle_votes import BattleVotes
from tuneback.services.battles import BattleService
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.comparisons import ComparisonService
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store
from tuneback.storage.keys import AccessStore

CSRF_SECRET = "csrf-hmac"


@dataclass
class Services:
    """Everything one app instance works with; built once by ``create_app``."""

    settings: Settings
    store: Store
    models: ModelCatalog
    chat: ChatService
    feedback: FeedbackService
    accounts: AccountService
    battles: BattleService
    votes: BattleVotes
    _csrf_secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, store: Store, models: ModelCatalog) -> Services:
        chat = ChatService(store, models)
        feedback = FeedbackService(store)
        battles = BattleService(chat, models)
        return cls(
            settings=settings,
            store=store,
            models=models,
            chat=chat,
            feedback=feedback,
            accounts=AccountService(store),
            battles=battles,
            votes=BattleVotes(
                battles,
                ComparisonService(store),
                feedback,
                daily_cap=settings.compare_daily_votes,
            ),
        )

    def csrf_secret(self) -> bytes:
        """The key CSRF tokens are signed with, shared by every worker through the database."""
        if self._csrf_secret is None:
            made = secrets.token_hex(32)
            self._csrf_secret = AccessStore(self.store).secret(CSRF_SECRET, made).encode()
        return self._csrf_secret


async def refuse_nul(request: Request) -> None:
    """NUL in a path or query would reach the database, where PostgreSQL refuses it.

    Every router but the static files depends on it: the API and the pages alike.
    A coroutine only so that it runs in the event loop: a plain function would
    cost every request a trip to the thread pool.
    """
    if "\x00" in request.url.path or "%00" in request.url.query:
        raise ValidationError("the URL may not contain NUL (%00) characters")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# The getters are coroutines only so that FastAPI calls them in the event loop:
# a plain function would cost each request a trip to the thread pool.
async def get_services(request: Request) -> Services:
    return _services(request)


async def get_store(request: Request) -> Store:
    return _services(request).store


async def get_settings(request: Request) -> Settings:
    return _services(request).settings


async def get_chat(request: Request) -> ChatService:
    return _services(request).chat


async def get_feedback(request: Request) -> FeedbackService:
    return _services(request).feedback


ServicesDep = Annotated[Services, Depends(get_services)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
FeedbackDep = Annotated[FeedbackService, Depends(get_feedback)]
