"""AccessTokenCodec alone: issue and verify against an injected clock."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from bastion.errors import InvalidToken
from bastion.security.keys import Algorithm, KeyRing, SigningKey, generate_key
from bastion.security.tokens import LEEWAY_SECONDS, MAX_TOKEN_BYTES, AccessTokenCodec

#: 2001-09-09: far from the wall clock, so any use of real time shows up.
EPOCH = 1_000_000_000.0
TTL = 900
ALGORITHMS: list[Algorithm] = ["HS256", "EdDSA", "ES256"]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = EPOCH) -> None:
        self.current = start

    def now(self) -> float:
        """The fake time."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move forward (or back, with a negative ``seconds``)."""
        self.current += seconds


def make_codec(
    ring: KeyRing | None = None,
    *,
    clock: FakeClock | None = None,
    issuer: str = "bastion",
    audience: str = "bastion",
) -> AccessTokenCodec:
    """A codec over ``ring`` (a fresh HS256 key by default)."""
    return AccessTokenCodec(
        ring or KeyRing([generate_key("HS256", created_at=0)]),
        issuer=issuer,
        audience=audience,
        ttl=TTL,
        clock=clock or FakeClock(),
    )


def issue(codec: AccessTokenCodec, **changes: Any) -> str:
    """A token for user 7 in session ``s1``."""
    values: dict[str, Any] = {
        "user_id": 7,
        "session_id": "s1",
        "permissions": ("reports:read",),
        "version": 3,
        **changes,
    }
    return codec.issue(**values)


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """A token with exactly ``claims``, signed by ``key``."""
    headers = {"kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)


def claims_of(token: str) -> dict[str, Any]:
    """Unverified claims."""
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


# -- issue and verify -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_issued_token_verifies_to_its_principal(algorithm: Algorithm) -> None:
    clock = FakeClock()
    codec = make_codec(KeyRing([generate_key(algorithm, created_at=0)]), clock=clock)
    principal, version = codec.verify(issue(codec))
    assert principal.user_id == 7
    assert principal.session_id == "s1"
    assert principal.permissions == frozenset({"reports:read"})
    assert principal.issued_at == EPOCH
    assert principal.expires_at == EPOCH + TTL
    assert version == 3


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_issued_token_header(algorithm: Algorithm) -> None:
    ring = KeyRing([generate_key(algorithm, created_at=0)])
    header = jwt.get_unverified_header(issue(make_codec(ring)))
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": ring.signing_key.kid}


def test_issued_claims_follow_the_clock_and_ttl() -> None:
    claims = claims_of(issue(make_codec()))
    assert claims["iat"] == int(EPOCH)
    assert claims["exp"] == int(EPOCH) + TTL
    assert claims["sub"] == "7"
    assert claims["iss"] == "bastion"
    assert claims["aud"] == "bastion"
    assert claims["sid"] == "s1"
    assert claims["permissions"] == ["reports:read"]


def test_each_token_gets_a_fresh_jti() -> None:
    codec = make_codec()
    first, _ = codec.verify(issue(codec))
    second, _ = codec.verify(issue(codec))
    assert first.token_id != second.token_id


def test_verification_uses_the_injected_clock_not_the_wall_clock() -> None:
    """Issued in 2001 and verified in 2001: valid, although long expired by wall time."""
    codec = make_codec(clock=FakeClock(EPOCH))
    principal, _ = codec.verify(issue(codec))
    assert principal.user_id == 7


def test_token_from_the_far_future_verifies_in_its_own_time() -> None:
    codec = make_codec(clock=FakeClock(4_000_000_000.0))
    principal, _ = codec.verify(issue(codec))
    assert principal.expires_at == 4_000_000_000.0 + TTL


# -- expiry and leeway -------------------------------------------------------------------


def test_token_is_valid_within_the_leeway_after_exp() -> None:
    clock = FakeClock()
    codec = make_codec(clock=clock)
    token = issue(codec)
    clock.advance(TTL + LEEWAY_SECONDS - 1)
    codec.verify(token)


def test_token_is_refused_once_exp_plus_leeway_has_passed() -> None:
    clock = FakeClock()
    codec = make_codec(clock=clock)
    token = issue(codec)
    clock.advance(TTL + LEEWAY_SECONDS)
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_token_verified_before_is_still_refused_once_expired() -> None:
    """Remembering verified tokens must not extend their life."""
    clock = FakeClock()
    codec = make_codec(clock=clock)
    token = issue(codec)
    codec.verify(token)
    clock.advance(TTL + LEEWAY_SECONDS)
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_token_verified_again_gives_the_same_principal() -> None:
    codec = make_codec()
    token = issue(codec)
    assert codec.verify(token) == codec.verify(token)


def test_token_issued_slightly_in_the_future_is_tolerated() -> None:
    ring = KeyRing([generate_key("HS256", created_at=0)])
    token = issue(make_codec(ring, clock=FakeClock(EPOCH + LEEWAY_SECONDS)))
    make_codec(ring, clock=FakeClock(EPOCH)).verify(token)


def test_token_issued_beyond_the_leeway_in_the_future_is_refused() -> None:
    ring = KeyRing([generate_key("HS256", created_at=0)])
    token = issue(make_codec(ring, clock=FakeClock(EPOCH + LEEWAY_SECONDS + 1)))
    with pytest.raises(InvalidToken):
        make_codec(ring, clock=FakeClock(EPOCH)).verify(token)


def test_not_before_beyond_the_leeway_is_refused() -> None:
    key = generate_key("HS256", created_at=0)
    codec = make_codec(KeyRing([key]))
    claims = {**claims_of(issue(codec)), "nbf": int(EPOCH) + LEEWAY_SECONDS + 1}
    with pytest.raises(InvalidToken):
        codec.verify(sign(key, claims))


# -- who may verify -----------------------------------------------------------------------


def test_token_of_another_issuer_is_refused() -> None:
    ring = KeyRing([generate_key("HS256", created_at=0)])
    token = issue(make_codec(ring, issuer="someone-else"))
    with pytest.raises(InvalidToken):
        make_codec(ring).verify(token)


def test_token_for_another_audience_is_refused() -> None:
    ring = KeyRing([generate_key("HS256", created_at=0)])
    token = issue(make_codec(ring, audience="another-api"))
    with pytest.raises(InvalidToken):
        make_codec(ring).verify(token)


def test_token_signed_by_a_different_key_under_a_known_kid_is_refused() -> None:
    ours = generate_key("HS256", created_at=0)
    theirs = generate_key("HS256", created_at=0)
    impostor = SigningKey(ours.kid, "HS256", theirs.private, theirs.public, 0)
    token = issue(make_codec(KeyRing([impostor])))
    with pytest.raises(InvalidToken):
        make_codec(KeyRing([ours])).verify(token)


def test_token_signed_by_a_key_outside_the_ring_is_refused() -> None:
    token = issue(make_codec(KeyRing([generate_key("EdDSA", created_at=0)])))
    with pytest.raises(InvalidToken):
        make_codec(KeyRing([generate_key("EdDSA", created_at=0)])).verify(token)


def test_algorithm_must_match_the_key_named_by_kid() -> None:
    ed = generate_key("EdDSA", created_at=0)
    es = generate_key("ES256", created_at=0)
    codec = make_codec(KeyRing([ed]))
    claims = claims_of(issue(codec))
    token = jwt.encode(
        claims, es.private, algorithm="ES256", headers={"kid": ed.kid, "typ": "at+jwt"}
    )
    with pytest.raises(InvalidToken):
        codec.verify(token)


# -- rotation ----------------------------------------------------------------------------


def test_after_rotation_the_new_key_signs() -> None:
    old, new = generate_key("EdDSA", created_at=0), generate_key("EdDSA", created_at=1)
    codec = make_codec(KeyRing([old]))
    codec.ring = KeyRing([old, new])
    assert jwt.get_unverified_header(issue(codec))["kid"] == new.kid


def test_after_rotation_tokens_of_the_old_key_still_verify() -> None:
    old, new = generate_key("EdDSA", created_at=0), generate_key("EdDSA", created_at=1)
    codec = make_codec(KeyRing([old]))
    token = issue(codec)
    codec.ring = KeyRing([old, new])
    principal, _ = codec.verify(token)
    assert principal.user_id == 7


def test_tokens_of_a_retired_key_are_refused() -> None:
    old, new = generate_key("EdDSA", created_at=0), generate_key("EdDSA", created_at=1)
    codec = make_codec(KeyRing([old]))
    token = issue(codec)
    codec.verify(token)
    codec.ring = KeyRing([new])
    with pytest.raises(InvalidToken):
        codec.verify(token)


# -- header rules -------------------------------------------------------------------------


def test_full_media_type_is_accepted_as_typ() -> None:
    """RFC 9068 §2.1 allows ``application/at+jwt`` as well as ``at+jwt``."""
    key = generate_key("HS256", created_at=0)
    codec = make_codec(KeyRing([key]))
    token = sign(key, claims_of(issue(codec)), typ="application/at+jwt")
    codec.verify(token)


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},
        {"typ": None},
        {"crit": ["exp"]},
        {"kid": "unknown"},
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "https://attacker.example/cert"},
        {"x5c": ["MIIB"]},
    ],
    ids=repr,
)
def test_header_rules(header: dict[str, Any]) -> None:
    key = generate_key("HS256", created_at=0)
    codec = make_codec(KeyRing([key]))
    headers = {"kid": key.kid, "typ": "at+jwt", **header}
    token = jwt.encode(claims_of(issue(codec)), key.private, algorithm="HS256", headers=headers)
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_embedded_jwk_is_refused() -> None:
    key = generate_key("EdDSA", created_at=0)
    codec = make_codec(KeyRing([key]))
    token = sign(key, claims_of(issue(codec)), jwk=key.public_jwk())
    with pytest.raises(InvalidToken):
        codec.verify(token)


# -- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", ".", "..", "a.b", "a.b.c", "e30.e30.", "W10.e30.", "bnVsbA.e30.", "\u00e9.\u00e9.\u00e9"],
    ids=repr,
)
def test_garbage_raises_invalid_token_only(token: str) -> None:
    with pytest.raises(InvalidToken):
        make_codec().verify(token)


def test_oversized_token_is_refused_before_parsing() -> None:
    key = generate_key("HS256", created_at=0)
    codec = make_codec(KeyRing([key]))
    token = sign(key, {**claims_of(issue(codec)), "pad": "x" * MAX_TOKEN_BYTES})
    with pytest.raises(InvalidToken):
        codec.verify(token)


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "abc"},
        {"sub": 7},
        {"sub": str(2**63)},
        {"sid": None},
        {"sid": 1},
        {"jti": 1},
        {"permissions": "admin"},
        {"permissions": [None]},
        {"ver": "3"},
        {"exp": "later"},
        {"exp": float("inf")},
        {"exp": float("nan")},
        {"exp": 10**30},
        {"iat": float("nan")},
        {"iat": False},
    ],
    ids=repr,
)
def test_well_signed_malformed_claims_raise_invalid_token(changes: dict[str, Any]) -> None:
    key = generate_key("HS256", created_at=0)
    codec = make_codec(KeyRing([key]))
    token = sign(key, {**claims_of(issue(codec)), **changes})
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_token_without_ver_is_version_zero() -> None:
    key = generate_key("HS256", created_at=0)
    codec = make_codec(KeyRing([key]))
    claims = claims_of(issue(codec))
    del claims["ver"]
    _, version = codec.verify(sign(key, claims))
    assert version == 0
