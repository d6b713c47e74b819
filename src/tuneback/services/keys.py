"""Who may call the API: project-scoped API keys and presigned feedback tokens.

An API key is ``tb_`` and 43 random characters; only its SHA-256 is stored, so
the key is shown once, when it is made. A verified key is remembered for
``KEY_CACHE_SECONDS`` (2 s): checking the database on every request would cost
more than the request itself. Revoking a key drops it from the cache of the
process that revoked it, so there the very next request is refused; other
server processes (``--workers``, other hosts, a ``tuneback keys revoke`` run
beside a server) refuse it at most ``KEY_CACHE_SECONDS`` later.

A feedback token lets someone without a key (an end user's browser, a link in
an e-mail) rate one run on one feedback key until it expires. It is
``ft1.<claims>.<signature>``: the claims are base64url JSON, the signature an
HMAC-SHA256 under a secret kept in the database, so every server process on the
same database accepts the tokens any of them made. A token also names the API
key that made it, and dies with that key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tuneback.domain import SYSTEM_PROJECT, new_id, utcnow
from tuneback.domain.access import ROLES, AccountRole
from tuneback.domain.json_encoding import json_bytes
from tuneback.errors import NotFoundError, ValidationError
from tuneback.services.audit import AuditService
from tuneback.storage import Store
from tuneback.storage.keys import AccessStore, ApiKeyRecord

KEY_PREFIX = "tb_"
TOKEN_PREFIX = "ft1"
TOKEN_SECRET = "feedback-token-hmac"
DEFAULT_TOKEN_TTL = timedelta(hours=3)
MAX_TOKEN_TTL = timedelta(days=30)
KEY_CACHE_SECONDS = 2.0
"""How long another process may still accept a key after it is revoked."""
PROJECT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class TokenError(Exception):
    """A feedback token that is malformed, forged, expired or whose key was revoked."""


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: ``key`` is the secret, shown this once and never again."""

    key: str
    record: ApiKeyRecord


@dataclass(frozen=True)
class FeedbackClaims:
    """What a token allows: feedback on ``run_id``, on ``key``, until ``expires_at``."""

    run_id: str
    key: str
    project: str
    expires_at: datetime
    api_key_id: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyService:
    """Makes, checks and revokes API keys; signs and checks feedback tokens."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.access = AccessStore(store)
        self.audit = AuditService(store)
        self._clock = clock
        self._verified: dict[str, tuple[float, ApiKeyRecord]] = {}
        # Bumped by every revocation: a check that read the database before a
        # revocation must not put the key back into the cache after it.
        self._revocations = 0
        self._lock = threading.Lock()
        self._secret: bytes | None = None

    # -- API keys ----------------------------------------------------------------

    def create(
        self,
        project: str,
        *,
        name: str | None = None,
        role: AccountRole = "owner",
        actor: str | None = None,
    ) -> NewApiKey:
        """Make a key for ``project`` with ``role``; ``actor`` (who asked) is audited."""
        if role not in ROLES:
            raise ValidationError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        if not PROJECT_NAME.fullmatch(project):
            raise ValidationError(
                f"project {project!r}: use 1 to 64 letters, digits, '_', '.' or '-'"
            )
        if project == SYSTEM_PROJECT:
            # Its events are the audits of every project: no key may read them.
            raise ValidationError(f"project {project!r} is reserved for tuneback's own events")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = self.access.add_key(
            key_id=new_id(),
            project=project,
            name=name,
            key_hash=hash_key(key),
            prefix=key[:10],
            role=role,
        )
        self.audit.record(
            action="key.created",
            actor=actor,
            project=project,
            target=record.id,
            details={"role": role} | ({"name": name} if name is not None else {}),
        )
        return NewApiKey(key=key, record=record)

    def cached(self, key: str) -> ApiKeyRecord | None:
        """The record of a key verified in the last few seconds, without a database read."""
        with self._lock:
            found = self._verified.get(hash_key(key))
        if found is not None and self._clock() - found[0] < KEY_CACHE_SECONDS:
            return found[1]
        return None

    def verify(self, key: str) -> ApiKeyRecord | None:
        """The active key record for ``key``, or None when it is unknown or revoked."""
        digest = hash_key(key)
        now = self._clock()
        with self._lock:
            cached = self._verified.get(digest)
            revocations = self._revocations
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        record = self.access.key_by_hash(digest)
        if record is None or not record.active:
            with self._lock:
                self._verified.pop(digest, None)
            return None
        with self._lock:
            if self._revocations == revocations:
                self._verified[digest] = (now, record)
        return record

    def list(self, project: str | None = None) -> list[ApiKeyRecord]:
        return self.access.list_keys(project)

    def revoke(self, key_id: str, *, actor: str | None = None) -> ApiKeyRecord:
        """Revoke a key; ``actor`` (who asked) goes into the audit trail."""
        record = self.access.revoke_key(key_id)
        with self._lock:
            self._revocations += 1
            self._verified = {h: v for h, v in self._verified.items() if v[1].id != key_id}
        self.audit.record(
            action="key.revoked", actor=actor, project=record.project, target=record.id
        )
        return record

    def _key_active(self, key_id: str) -> bool:
        with self._lock:
            for stamp, record in self._verified.values():
                if record.id == key_id and self._clock() - stamp < KEY_CACHE_SECONDS:
                    return True
        try:
            return self.access.get_key(key_id).active
        except NotFoundError:
            return False

    # -- feedback tokens ---------------------------------------------------------

    @property
    def secret_ready(self) -> bool:
        """Whether tokens can be signed without reading the secret from the database."""
        return self._secret is not None

    def _signing_secret(self) -> bytes:
        if self._secret is None:
            made = secrets.token_hex(32)
            self._secret = self.access.secret(TOKEN_SECRET, made).encode()
        return self._secret

    def _sign(self, kind: str, body: str) -> str:
        # One call into OpenSSL: half the time of building an HMAC object (every
        # proxied answer carries a signed feedback link).
        return _b64(hmac.digest(self._signing_secret(), f"{kind}.{body}".encode(), "sha256"))

    def seal(self, kind: str, claims: dict[str, Any]) -> str:
        """``kind.body.signature``: claims anyone can read and nobody can change.

        ``kind`` is signed too, so a token made for one purpose never passes for another.
        """
        body = _b64(json_bytes(claims))
        return f"{kind}.{body}.{self._sign(kind, body)}"

    def unseal(self, kind: str, token: str, *, what: str) -> dict[str, Any]:
        """The claims of a genuine ``kind`` token; TokenError naming ``what`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != kind:
            raise TokenError(f"not a {what}")
        body, signature = parts[1], parts[2]
        if not hmac.compare_digest(self._sign(kind, body), signature):
            raise TokenError(f"the {what}'s signature does not match")
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            raise TokenError(f"the {what} is malformed") from None
        if not isinstance(data, dict):
            raise TokenError(f"the {what} is malformed")
        return data

    def issue_token(
        self,
        *,
        run_id: str,
        key: str,
        project: str,
        api_key_id: str | None,
        expires_in: timedelta = DEFAULT_TOKEN_TTL,
    ) -> tuple[str, FeedbackClaims]:
        if not timedelta(0) < expires_in <= MAX_TOKEN_TTL:
            raise ValidationError(
                f"expires_in must be between 1 second and {MAX_TOKEN_TTL.days} days",
                details=[{"loc": ["body", "expires_in"], "msg": "out of range", "type": "range"}],
            )
        expires_at = (utcnow() + expires_in).replace(microsecond=0)
        claims = {
            "r": run_id,
            "k": key,
            "p": project,
            "e": int(expires_at.timestamp()),
            "i": api_key_id,
        }
        token = self.seal(TOKEN_PREFIX, claims)
        return token, FeedbackClaims(run_id, key, project, expires_at, api_key_id)

    def check_token(self, token: str) -> FeedbackClaims:
        """The claims of a genuine, unexpired token whose key is still active."""
        data = self.unseal(TOKEN_PREFIX, token, what="feedback token")
        try:
            claims = FeedbackClaims(
                run_id=str(data["r"]),
                key=str(data["k"]),
                project=str(data["p"]),
                expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
                api_key_id=data.get("i"),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenError("the feedback token is malformed") from None
        if claims.expires_at <= utcnow():
            raise TokenError(f"the feedback token expired at {claims.expires_at.isoformat()}")
        if claims.api_key_id is not None and not self._key_active(claims.api_key_id):
            raise TokenError("the API key that made this feedback token was revoked")
        return claims
