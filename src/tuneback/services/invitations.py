"""Invitation links to a project's chat, for projects whose chat is ``link`` only.

An owner hands out a link (``tuneback users invite``); opening it and pressing
*Join* gives that browser a pass: a signed cookie naming the project and the
browser's own identity, so a copied pass is worth nothing in another browser.
Links and passes are signed with the server's token secret; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tuneback.domain import utcnow
from tuneback.errors import ValidationError
from tuneback.services.keys import KeyService, TokenError

INVITE_KIND = "inv1"
PASS_KIND = "pass1"
DEFAULT_INVITE_TTL = timedelta(days=7)
MAX_INVITE_TTL = timedelta(days=365)
PASS_TTL = timedelta(days=365)


@dataclass(frozen=True)
class Invitation:
    project: str
    expires_at: datetime


class Invitations:
    """Issues and checks invitation links and the passes they turn into."""

    def __init__(self, keys: KeyService) -> None:
        self.keys = keys

    def issue(self, project: str, *, expires_in: timedelta = DEFAULT_INVITE_TTL) -> str:
        if not timedelta(0) < expires_in <= MAX_INVITE_TTL:
            raise ValidationError(
                f"an invitation lasts between 1 second and {MAX_INVITE_TTL.days} days"
            )
        expires_at = utcnow() + expires_in
        return self.keys.seal(INVITE_KIND, {"p": project, "e": int(expires_at.timestamp())})

    def check(self, token: str) -> Invitation:
        """The invitation a genuine, unexpired link carries; TokenError otherwise."""
        data = self.keys.unseal(INVITE_KIND, token, what="invitation link")
        invitation = _claims(data, "invitation link")
        if invitation.expires_at <= utcnow():
            raise TokenError(
                f"the invitation link expired at {invitation.expires_at:%Y-%m-%d %H:%M} UTC: "
                "ask for a new one"
            )
        return invitation

    def admit(self, token: str, browser: str) -> tuple[str, Invitation]:
        """Turn a link into this browser's pass (a cookie value)."""
        invitation = self.check(token)
        expires = int((utcnow() + PASS_TTL).timestamp())
        chit = self.keys.seal(PASS_KIND, {"p": invitation.project, "b": browser, "e": expires})
        return chit, invitation

    def admitted(self, chit: str | None, browser: str, project: str) -> bool:
        """Whether ``chit`` lets this browser into the chat of ``project``."""
        if not chit:
            return False
        try:
            data = self.keys.unseal(PASS_KIND, chit, what="chat pass")
            admitted = _claims(data, "chat pass")
        except TokenError:
            return False
        return (
            admitted.project == project
            and data.get("b") == browser
            and admitted.expires_at > utcnow()
        )


def _claims(data: dict[str, object], what: str) -> Invitation:
    try:
        return Invitation(
            project=str(data["p"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),  # type: ignore[call-overload]
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise TokenError(f"the {what} is malformed") from None
