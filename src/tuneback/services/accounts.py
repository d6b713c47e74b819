"""Accounts, passwords and sign-in sessions for the pages.

Passwords are hashed with argon2 (argon2-cffi); a session is a random token in
an HTTP-only cookie whose SHA-256 is stored, so a copy of the database signs
nobody in. Sessions end on logout, on expiry, and when the password changes or
the account is disabled. Sign-ins, new accounts and changes are audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from tuneback.domain import utcnow
from tuneback.domain.access import ROLES, Account, AccountRole
from tuneback.errors import NotFoundError, RateLimitedError, ValidationError
from tuneback.services.audit import AuditService
from tuneback.storage import Store
from tuneback.storage.accounts import AccountStore

NAME = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")
MIN_PASSWORD = 8
SESSION_CACHE_SECONDS = 2.0
"""How long a checked session is trusted without a database read: a logout or a
disabled account elsewhere takes effect within this bound."""
DEFAULT_SESSION_TTL = timedelta(days=7)
FAILED_SIGN_INS = parse("10 per 15 minutes")
"""Wrong passwords one account name may take before it is refused for a while: guessing
one person's password from many addresses is slow too (the per-address limit is the
server's rate limit)."""


class AccountService:
    """Adds and checks accounts; opens, finds and closes sessions."""

    def __init__(
        self,
        store: Store,
        *,
        session_ttl: timedelta = DEFAULT_SESSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rows = AccountStore(store)
        self.audit = AuditService(store)
        self.session_ttl = session_ttl
        self._hasher = PasswordHasher()
        # Verifying against this when the name is unknown costs the same time
        # as a wrong password, so timing does not tell which names exist.
        self._decoy = self._hasher.hash(secrets.token_hex(16))
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[float, Account]] = {}
        self._count: tuple[float, int] | None = None
        self._failures = SlidingWindowCounterRateLimiter(MemoryStorage())

    # -- accounts ----------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        role: AccountRole,
        password: str,
        projects: Iterable[str] = (),
        actor: str | None = None,
    ) -> Account:
        if not NAME.fullmatch(name):
            raise ValidationError(
                f"account name {name!r}: use 1 to 64 letters, digits, '_', '.', '@' or '-'"
            )
        if role not in ROLES:
            raise ValidationError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        account = self.rows.add_account(
            name=name,
            role=role,
            projects=tuple(sorted(set(projects))),
            password_hash=self._hash(password),
        )
        self._forget_count()
        self.audit.record(
            action="account.created",
            actor=actor,
            target=name,
            details={"role": role, "projects": list(account.projects)},
        )
        return account

    def list(self) -> list[Account]:
        return self.rows.list_accounts()

    def get(self, name: str) -> Account:
        return self.rows.account(name)[0]

    def set_password(self, name: str, password: str, *, actor: str | None = None) -> Account:
        account = self.rows.update_account(name, password_hash=self._hash(password))
        self._forget_sessions_of(name)
        self.audit.record(action="account.password_changed", actor=actor, target=name)
        return account

    def set_disabled(self, name: str, disabled: bool, *, actor: str | None = None) -> Account:
        account = self.rows.update_account(name, disabled=disabled)
        self._forget_sessions_of(name)
        self._forget_count()
        action = "account.disabled" if disabled else "account.enabled"
        self.audit.record(action=action, actor=actor, target=name)
        return account

    def any_account(self) -> bool:
        """Whether one active account exists (read at most every couple of seconds)."""
        now = self._clock()
        with self._lock:
            if self._count is not None and now - self._count[0] < SESSION_CACHE_SECONDS:
                return self._count[1] > 0
        count = self.rows.count_active_accounts()
        with self._lock:
            self._count = (now, count)
        return count > 0

    def _forget_count(self) -> None:
        with self._lock:
            self._count = None

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters")
        return self._hasher.hash(password)

    # -- signing in --------------------------------------------------------------

    def check_password(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is its password and it is active; else None."""
        try:
            account, stored = self.rows.account(name)
        except NotFoundError:
            account, stored = None, self._decoy
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if account is None or not account.active:
            return None
        return account

    def sign_in(self, name: str, password: str, *, source: str | None = None) -> str | None:
        """A new session token for the account, or None (audited either way).

        RateLimitedError once a name has taken too many wrong passwords.
        """
        key = name[:64]
        if not self._failures.test(FAILED_SIGN_INS, key):
            stats = self._failures.get_window_stats(FAILED_SIGN_INS, key)
            wait = max(1, int(stats.reset_time - time.time()) + 1)
            raise RateLimitedError(
                f"too many wrong passwords for {key!r}: try again in {wait // 60 + 1} minutes",
                retry_after=wait,
            )
        account = self.check_password(name, password)
        details = {"from": source} if source else {}
        if account is None:
            self._failures.hit(FAILED_SIGN_INS, key)
            self.audit.record(action="login.failed", target=key, details=details)
            return None
        token = secrets.token_urlsafe(32)
        self.rows.add_session(
            token_hash=_digest(token), account=name, expires_at=utcnow() + self.session_ttl
        )
        self.audit.record(action="login", actor=name, target=name, details=details)
        return token

    def session(self, token: str) -> Account | None:
        """The account a live session token belongs to, or None."""
        digest = _digest(token)
        now = self._clock()
        with self._lock:
            cached = self._sessions.get(digest)
        if cached is not None and now - cached[0] < SESSION_CACHE_SECONDS:
            return cached[1]
        found = self.rows.session(digest)
        if found is None or found[1] <= utcnow() or not found[0].active:
            with self._lock:
                self._sessions.pop(digest, None)
            return None
        with self._lock:
            self._sessions[digest] = (now, found[0])
        return found[0]

    def sign_out(self, token: str) -> None:
        digest = _digest(token)
        with self._lock:
            cached = self._sessions.pop(digest, None)
        self.rows.end_session(digest)
        if cached is not None:
            self.audit.record(action="logout", actor=cached[1].name, target=cached[1].name)

    def _forget_sessions_of(self, name: str) -> None:
        with self._lock:
            self._sessions = {d: v for d, v in self._sessions.items() if v[1].name != name}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
