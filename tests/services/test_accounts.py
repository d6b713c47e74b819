"""Accounts and sessions on both databases: passwords, expiry, sign-out, audits without secrets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tuneback.errors import ConflictError, RateLimitedError, ValidationError
from tuneback.services.accounts import AccountService
from tuneback.storage import Store

PASSWORD = "a long enough secret"


def _audits(store: Store) -> list[tuple[str, str | None, str | None, dict[str, object]]]:
    return [
        (e.payload.action, e.payload.actor, e.payload.target, e.payload.details)  # type: ignore[attr-defined]
        for e in store.events_after(0, types=["audit.recorded"])
    ]


def test_sign_in_opens_a_session_that_sign_out_closes(store: Store) -> None:
    accounts = AccountService(store)
    added = accounts.add("ann", role="annotator", password=PASSWORD, projects=["shop"])
    assert (added.name, added.role, added.projects, added.active) == (
        "ann",
        "annotator",
        ("shop",),
        True,
    )
    assert accounts.sign_in("ann", "wrong password", source="127.0.0.1") is None
    token = accounts.sign_in("ann", PASSWORD, source="127.0.0.1")
    assert token is not None
    found = accounts.session(token)
    assert found is not None
    assert found.name == "ann"
    accounts.sign_out(token)
    assert AccountService(store).session(token) is None
    # What the log keeps: who and when, never a password, hash or token.
    assert _audits(store) == [
        ("account.created", None, "ann", {"role": "annotator", "projects": ["shop"]}),
        ("login.failed", None, "ann", {"from": "127.0.0.1"}),
        ("login", "ann", "ann", {"from": "127.0.0.1"}),
        ("logout", "ann", "ann", {}),
    ]
    text = " ".join(e.model_dump_json() for e in store.events_after(0))
    for secret in (PASSWORD, token, "argon2"):
        assert secret not in text


def test_an_expired_session_signs_nobody_in(store: Store) -> None:
    accounts = AccountService(store, session_ttl=timedelta(seconds=-1))
    accounts.add("bob", role="user", password=PASSWORD)
    token = accounts.sign_in("bob", PASSWORD)
    assert token is not None
    assert accounts.session(token) is None


def test_a_new_password_or_a_disabled_account_ends_every_session(store: Store) -> None:
    accounts = AccountService(store)
    accounts.add("cy", role="owner", password=PASSWORD)
    first = accounts.sign_in("cy", PASSWORD)
    assert first is not None
    assert accounts.session(first) is not None
    accounts.set_password("cy", "another long secret")
    assert accounts.session(first) is None
    assert accounts.sign_in("cy", PASSWORD) is None
    second = accounts.sign_in("cy", "another long secret")
    assert second is not None
    accounts.set_disabled("cy", True)
    assert accounts.session(second) is None
    assert accounts.sign_in("cy", "another long secret") is None
    assert not accounts.any_account()
    accounts.set_disabled("cy", False)
    assert accounts.sign_in("cy", "another long secret") is not None


def test_bad_accounts_are_refused_with_what_to_do(store: Store) -> None:
    accounts = AccountService(store)
    with pytest.raises(ValidationError, match="at least 8 characters"):
        accounts.add("dee", role="user", password="short")
    with pytest.raises(ValidationError, match="use 1 to 64 letters"):
        accounts.add("dee dee", role="user", password=PASSWORD)
    with pytest.raises(ValidationError, match="choose one of owner, annotator, user"):
        accounts.add("dee", role="admin", password=PASSWORD)  # type: ignore[arg-type]
    accounts.add("dee", role="user", password=PASSWORD)
    with pytest.raises(ConflictError, match="already an account called 'dee'"):
        accounts.add("dee", role="owner", password=PASSWORD)
    assert [a.name for a in accounts.list()] == ["dee"]


def test_a_name_that_takes_too_many_wrong_passwords_is_refused_for_a_while(store: Store) -> None:
    accounts = AccountService(store)
    accounts.add("eve", role="user", password=PASSWORD)
    for _ in range(10):
        assert accounts.sign_in("eve", "guess guess guess") is None
    with pytest.raises(RateLimitedError, match="too many wrong passwords for 'eve'") as refused:
        accounts.sign_in("eve", PASSWORD)
    assert 0 < refused.value.retry_after <= 15 * 60 + 1
    # Other people are not locked out by someone guessing Eve's password.
    accounts.add("fay", role="user", password=PASSWORD)
    assert accounts.sign_in("fay", PASSWORD) is not None
