"""The one services container of an app, and the one dependency that hands it to routes.

``create_app`` builds :class:`Services` once; every API route and page reaches it
through :data:`ServicesDep` (or, in code that holds a request, :func:`services_of`).
Nothing here is built per request: the services keep caches (keys, the CSRF
secret, the chat's live answers, the annotation tasks' workers), and a copy made
per request would lose them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from tuneback.config import Settings
from tuneback.errors import ValidationError
from tuneback.services.accounts import AccountService
from tuneback.services.annotation import AnnotationService
from tuneback.services.background import BackgroundWork
from tuneback.services.battle_votes import BattleVotes
from tuneback.services.battles import BattleService
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService
from tuneback.services.comparisons import ComparisonService
from tuneback.services.datasets import DatasetService
from tuneback.services.feedback import FeedbackService
from tuneback.services.ingest import IngestService
from tuneback.services.invitations import Invitations
from tuneback.services.keys import KeyService
from tuneback.services.review import ReviewService
from tuneback.services.runs import RunService
from tuneback.storage import Store
from tuneback.storage.browse import Browse
from tuneback.storage.keys import AccessStore
from tuneback.storage.queries import Queries

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
    keys: KeyService
    invitations: Invitations
    runs: RunService
    comparisons: ComparisonService
    ingest: IngestService
    queries: Queries
    browse: Browse
    datasets: DatasetService
    reviews: ReviewService
    tasks: AnnotationService
    background: BackgroundWork
    _csrf_secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, store: Store, models: ModelCatalog) -> Services:
        # One owner of the work that runs off the request path; the lifespan shuts it down.
        background = BackgroundWork()
        chat = ChatService(store, models, background=background)
        feedback = FeedbackService(store)
        battles = BattleService(chat, models)
        comparisons = ComparisonService(store)
        keys = KeyService(store)
        reviews = ReviewService(store, feedback)
        return cls(
            settings=settings,
            store=store,
            models=models,
            chat=chat,
            feedback=feedback,
            accounts=AccountService(store),
            battles=battles,
            votes=BattleVotes(
                battles, comparisons, feedback, daily_cap=settings.compare_daily_votes
            ),
            keys=keys,
            invitations=Invitations(keys),
            runs=RunService(store),
            comparisons=comparisons,
            ingest=IngestService(store, feedback),
            queries=Queries(store),
            browse=Browse(store),
            datasets=DatasetService(store),
            reviews=reviews,
            tasks=AnnotationService(store, models, reviews, background=background),
            background=background,
        )

    @property
    def project(self) -> str:
        """The project this server's pages show."""
        return self.settings.project

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
    cost every request a trip to the thread pool. Read from the scope, not
    ``request.url``, which builds the whole URL (3% of a rating's time).
    """
    if "\x00" in request.scope["path"] or b"%00" in request.scope["query_string"]:
        raise ValidationError("the URL may not contain NUL (%00) characters")


def services_of(request: Request) -> Services:
    """The app's container, for code that has the request but is not a route."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    # A coroutine only so that FastAPI calls it in the event loop: a plain
    # function would cost each request a trip to the thread pool.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]
"""The app's services, the one dependency routes and pages take them through."""


# The feedback and runs routes still take single parts of the container; each
# getter reads the one container above, and costs a route one more to solve.
async def get_store(request: Request) -> Store:
    return services_of(request).store


async def get_feedback(request: Request) -> FeedbackService:
    return services_of(request).feedback


StoreDep = Annotated[Store, Depends(get_store)]
FeedbackDep = Annotated[FeedbackService, Depends(get_feedback)]
