"""A token check costs no database query while its client's registration is cached, and the cache ends.

The clock is the test's, so nothing here waits or races.
"""

from __future__ import annotations

import time

import jwt
import pytest

from meao.auth.clients import create_client, delete_client
from meao.auth.tokens import InvalidToken, LocalTokens, RegistrationCache, issue_token
from meao.config import get_settings
from meao.db.session import session_scope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingCache(RegistrationCache):
    """Counts the database reads."""

    reads = 0

    def read(self, client_id: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().read(client_id)


def _tokens(clock: Clock, ttl_s: float) -> tuple[LocalTokens, CountingCache]:
    tokens = LocalTokens(get_settings())
    tokens.registrations = CountingCache(ttl_s, clock)
    return tokens, tokens.registrations


def test_a_cached_registration_is_used_until_it_expires_then_a_deletion_shows(database: str) -> None:
    with session_scope() as session:
        create_client(session, "cached", ["app_lcm:read"], tenant="t1")
    token, _ = issue_token(get_settings(), "cached", {"app_lcm:read", "app_pkgm:read"}, None)
    clock = Clock()
    tokens, cache = _tokens(clock, 5.0)

    assert tokens.validate_cached(token) is None, "nothing is cached yet: the check needs the database"
    first = tokens.validate(token)
    assert (first.subject, first.scopes, first.tenant) == ("cached", frozenset({"app_lcm:read"}), "t1")
    assert cache.reads == 1
    assert tokens.validate_cached(token) == first
    assert tokens.validate(token) == first and cache.reads == 1, "a second check reads nothing"

    with session_scope() as session:
        delete_client(session, "cached")
    clock.now += 4.9
    assert tokens.validate(token) == first, "within MEAO_AUTH_CLIENT_CACHE_S the deletion is not seen yet"
    clock.now += 0.2
    assert tokens.validate_cached(token) is None
    with pytest.raises(InvalidToken, match="no longer exists"):
        tokens.validate(token)
    assert cache.reads == 2
    with pytest.raises(InvalidToken, match="no longer exists"):
        tokens.validate_cached(token)  # the absence is cached too: a forged sub costs one read per period


def test_a_bad_token_is_refused_without_reading_any_registration(database: str) -> None:
    tokens, cache = _tokens(Clock(), 5.0)
    good, _ = issue_token(get_settings(), "whoever", {"app_lcm:read"}, None)
    forged = jwt.encode(jwt.decode(good, options={"verify_signature": False}), "k" * 64, algorithm="HS256")
    for bad, says in (("not-a-jwt", "well-formed"), (forged, "signature")):
        with pytest.raises(InvalidToken, match=says):
            tokens.validate_cached(bad)
        with pytest.raises(InvalidToken, match=says):
            tokens.validate(bad)
    assert cache.reads == 0


def test_a_zero_lifetime_reads_the_registration_every_time(database: str) -> None:
    with session_scope() as session:
        create_client(session, "uncached", ["ops:read"])
    token, _ = issue_token(get_settings(), "uncached", {"ops:read"}, None)
    tokens, cache = _tokens(Clock(), 0.0)
    for _ in range(3):
        assert tokens.validate(token).subject == "uncached"
        assert tokens.validate_cached(token) is None
    assert cache.reads == 3


def test_a_token_issued_before_its_client_was_registered_again_is_refused(database: str) -> None:
    with session_scope() as session:
        create_client(session, "again", ["app_lcm:read"])
    old, _ = issue_token(get_settings(), "again", {"app_lcm:read"}, None)
    with session_scope() as session:
        delete_client(session, "again")
    time.sleep(1.05)  # tokens and registrations carry whole seconds
    with session_scope() as session:
        create_client(session, "again", ["app_lcm:read"])
    tokens, _ = _tokens(Clock(), 5.0)
    with pytest.raises(InvalidToken, match="issued before client again was registered"):
        tokens.validate(old)
    with pytest.raises(InvalidToken, match="issued before"):
        tokens.validate_cached(old)


def test_a_token_checked_before_is_still_refused_once_it_expires(database: str) -> None:
    """Verified tokens are remembered (not decoded again), but never past their expiry."""
    from meao.auth.tokens import LEEWAY_S, LOCAL_ALGORITHM, signing_key

    with session_scope() as session:
        create_client(session, "brief", ["ops:read"])
    now = int(time.time())
    ends = now + 2  # at least a second from now: the moment the token stops being accepted (exp + leeway)
    token = jwt.encode({"iss": "meao", "aud": "meao", "sub": "brief", "iat": now, "exp": ends - LEEWAY_S,
                        "scope": "ops:read"}, signing_key(get_settings()), algorithm=LOCAL_ALGORITHM)
    tokens, _ = _tokens(Clock(), 5.0)
    assert tokens.validate(token).subject == "brief"
    assert tokens.validate_cached(token) is not None
    time.sleep(max(0.0, ends + 0.05 - time.time()))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.validate_cached(token)
