"""Offline cracking against the shipped list, and the forgeries it builds on."""

from __future__ import annotations

import jwt
import pytest

from bastion.audit import jose
from bastion.audit.checks.jwt_weak_secret import crack
from bastion.audit.secrets_list import candidate_secrets, example_secrets

DOCUMENTED = {
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7": "FastAPI docs",
    "SECRET": "fastapi-users docs",
    "your-secret-key": "blog post",  # allowed: a documented weak secret the list must hold
}


def test_the_list_names_where_each_example_comes_from() -> None:
    """The three secrets SPEC names are listed, each with its source."""
    sources = dict(example_secrets())
    for secret, where in DOCUMENTED.items():
        assert where in sources[secret]
    assert all(source for source in sources.values())


def test_common_passwords_are_candidates_too() -> None:
    """Bastion's common-password list is part of the candidates."""
    assert sum(1 for _ in candidate_secrets()) > 30_000


@pytest.mark.parametrize("secret", [*DOCUMENTED, "changeme", "dragon"])
def test_weak_secrets_are_cracked_offline(secret: str) -> None:
    """A token signed with a listed secret gives the secret back."""
    token = jose.parse(jose.sign_hmac({"alg": "HS256"}, {"sub": "1"}, secret.encode()))
    assert token is not None
    found = crack(token)
    assert found is not None
    assert found[0] == secret.encode()


def test_a_random_secret_is_not_cracked() -> None:
    """A generated secret is not in any list."""
    key = "k" * 32 + "Zq81x!v0w"
    token = jose.parse(jwt.encode({"sub": "1"}, key, algorithm="HS256"))
    assert token is not None
    assert crack(token) is None


def test_forgeries_verify_where_a_broken_verifier_would_accept_them() -> None:
    """HMAC and ES256 forgeries are well-formed JWS that PyJWT verifies."""
    key = b"k" * 32
    forged = jose.sign_hmac({"alg": "HS256", "typ": "JWT"}, {"sub": "1"}, key)
    assert jwt.decode(forged, key, algorithms=["HS256"]) == {"sub": "1"}
    private, public_jwk = jose.new_ec_key()
    signed = jose.sign_es256({"alg": "ES256"}, {"sub": "2"}, private)
    public = jwt.PyJWK(public_jwk, "ES256").key
    assert jwt.decode(signed, public, algorithms=["ES256"]) == {"sub": "2"}
    unsigned = jose.unsigned({"alg": "none"}, {"sub": "3"})
    assert unsigned.endswith(".")
    parsed = jose.parse(unsigned)
    assert parsed is not None
    assert parsed.claims == {"sub": "3"}


def test_public_key_pems_for_the_confusion_attack() -> None:
    """A JWKS key becomes the PEM texts a confused verifier would MAC with."""
    _, public_jwk = jose.new_ec_key()
    pems = jose.public_key_pems(public_jwk)
    assert pems[0].startswith(b"-----BEGIN PUBLIC KEY-----")
    assert pems[1] == pems[0].rstrip(b"\n")
    assert jose.public_key_pems({"kty": "oct", "k": "AA"}) == []
