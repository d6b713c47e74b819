"""Who may do what: roles, the permissions each grants, and the people who hold them.

The one table of rules every door consults: the pages, the ``/ui`` endpoints
their scripts call and the API all ask :func:`allowed` through
:class:`Principal.require`, never a template.

- **owner** sees everything in their projects, manages keys, exports and trains;
- **annotator** works review queues and rates runs of their projects, under
  their own name, as source ``annotator``;
- **user** chats and rates their own answers; as an API key, an app that logs
  runs and feedback for its end users.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from tuneback.errors import AuthenticationError, NotFoundError, PermissionDeniedError

AccountRole = Literal["owner", "annotator", "user"]
ROLES: tuple[AccountRole, ...] = get_args(AccountRole)

Permission = Literal[
    "chat",  # talk to the models and rate one's own answers
    "log",  # write runs, conversations, feedback and comparisons through the API
    "read",  # read runs, conversations and feedback of the project
    "review",  # work review queues and rate any run of the project as an annotator
    "manage",  # dashboard, datasets, keys, feedback configs, exports, events
]

GRANTS: dict[AccountRole, frozenset[Permission]] = {
    "owner": frozenset({"chat", "log", "read", "review", "manage"}),
    "annotator": frozenset({"chat", "read", "review"}),
    "user": frozenset({"chat", "log"}),
}

ChatAccess = Literal["open", "link", "accounts"]
"""How end users reach a project's chat: anyone (each browser has its own identity),
browsers that opened an owner's invitation link, or signed-in accounts only."""

SIGN_IN_HINT = "sign in at /login (an owner adds accounts with: tuneback users add NAME)"


WHAT: dict[Permission, str] = {
    "chat": "the chat is for",
    "log": "logging runs and feedback is for",
    "read": "the runs and their feedback are for",
    "review": "review queues and rating runs are for",
    "manage": "the dashboard, datasets, keys and exports are for",
}


def allowed(role: AccountRole | None, permission: Permission) -> bool:
    return role is not None and permission in GRANTS[role]


@dataclass(frozen=True)
class Account:
    """A person who signs in to the pages; the password is never kept, only its hash."""

    name: str
    role: AccountRole
    projects: tuple[str, ...]
    """The projects this account works in; empty means every project."""
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Principal:
    """Whoever makes one request: an account, an API key, the local owner, or a browser.

    ``name`` is what their feedback and conversations carry. ``role`` is None for
    an end user known only by their browser: they may chat, nothing else.
    """

    name: str
    role: AccountRole | None
    kind: Literal["account", "key", "local", "browser"]
    projects: frozenset[str] | None = None
    """The projects this principal may touch; None means every project."""
    chat_name: str | None = None
    """The name their conversations go under when it is not ``name``: the local owner
    chats as their browser, so two browsers on one machine keep apart."""

    @property
    def chatter(self) -> str:
        return self.chat_name or self.name

    @property
    def signed_in(self) -> bool:
        return self.kind == "account"

    def may(self, permission: Permission, project: str | None = None) -> bool:
        if permission == "chat" and self.kind == "browser":
            return project is None or self.sees(project)
        if not allowed(self.role, permission):
            return False
        return project is None or self.sees(project)

    def sees(self, project: str) -> bool:
        return self.projects is None or project in self.projects

    def require(self, permission: Permission, project: str | None = None) -> Principal:
        """Return self when allowed; else the error that says why, and what to do."""
        if self.may(permission, project):
            return self
        if self.kind == "browser" or self.role is None:
            raise AuthenticationError(f"this needs an account: {SIGN_IN_HINT}")
        if project is not None and not self.sees(project):
            raise PermissionDeniedError(f"{self.name!r} does not work in project {project!r}")
        needed = " or ".join(f"{_article(r)} {r}" for r in holders(permission))
        raise PermissionDeniedError(
            f"{self.name} is {_article(self.role)} {self.role}; {WHAT[permission]} {needed}",
            details={"role": self.role, "needs": permission},
        )

    def check(self, project: str, what: str, object_id: str) -> None:
        """Hide other projects' objects: to this principal they do not exist."""
        if not self.sees(project):
            raise NotFoundError(f"no {what} with id {object_id}")


def holders(permission: Permission) -> list[AccountRole]:
    return [role for role in ROLES if permission in GRANTS[role]]


def parse_projects(text: str) -> tuple[str, ...]:
    return tuple(sorted({p.strip() for p in text.split(",") if p.strip()}))


def join_projects(projects: Iterable[str]) -> str:
    return ",".join(sorted(set(projects)))


def _article(word: str) -> str:
    return "an" if word[:1] in "aeio" else "a"  # "a user": the u sounds like "you"
