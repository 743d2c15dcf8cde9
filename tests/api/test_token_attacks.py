"""Forged, tampered and malformed access tokens: every one is a 401, never a 500.

Each attack is crafted from outside, the way an attacker would, against a
running server: with the real signing key where the point is that the
signature is fine but something else is not (RFC 8725), and without it where
the point is that a forgery is caught. A control test re-signs an unchanged
token with the same code and expects 200, so a refusal below is caused by the
one thing each test changes.

Verification touches no database (a signature check and two dictionary
lookups), so these tests share one server per key type, on SQLite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from bastion import Settings, create_app
from bastion.security.tokens import REQUIRED_CLAIMS
from tests.conftest import UNLIMITED, _serve, bearer, login, register

SECRET = "attack-tests-known-secret-0123456789abcdef"
SECRET_BYTES = SECRET.encode("utf-8")

Headers = list[tuple[bytes, bytes]] | dict[str, str]


@dataclass
class Target:
    """A running server with one signed-in user.

    Attributes:
        http: A client of the server.
        token: A genuine access token.
        refresh_token: Its refresh token.
        header: The token's JOSE header.
        claims: The token's claims.
        data_dir: The server's data directory.
    """

    http: httpx.AsyncClient
    token: str
    refresh_token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    data_dir: Path

    async def protected(self, headers: Headers) -> httpx.Response:
        """``GET /protected`` with ``headers``."""
        return await self.http.get("/protected", headers=headers)

    def fresh_claims(self, **changes: Any) -> dict[str, Any]:
        """The token's claims with a new ``iat``/``exp`` and ``changes`` applied."""
        now = int(time.time())
        claims = {**self.claims, "iat": now, "exp": now + 600, **changes}
        return {name: value for name, value in claims.items() if value is not _DROP}


_DROP = object()


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    """A JSON value as a base64url segment."""
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def hs256(header: dict[str, Any], claims: Any, key: bytes = SECRET_BYTES) -> str:
    """A compact JWS with exactly ``header``, HMAC-SHA256 signed with ``key``."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def decode_segment(segment: str) -> dict[str, Any]:
    """A base64url JSON object segment."""
    value: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return value


def assert_invalid_token(response: httpx.Response) -> None:
    """RFC 6750 §3.1: 401 with ``error="invalid_token"`` in the challenge."""
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["content-type"].startswith("application/json")


async def _target(
    tmp_path_factory: pytest.TempPathFactory, **overrides: Any
) -> AsyncIterator[Target]:
    data_dir = tmp_path_factory.mktemp("attacks") / "data"
    values: dict[str, Any] = {"data_dir": data_dir, **UNLIMITED, **overrides}
    settings = Settings(_env_file=None, **values)
    stack: list[Callable[[], Awaitable[None]]] = []
    base_url = await _serve(create_app(settings), stack)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            await register(http, "victim")
            tokens = await login(http, "victim")
            token = tokens["access_token"]
            head, body, _ = token.split(".")
            yield Target(
                http,
                token,
                tokens["refresh_token"],
                decode_segment(head),
                decode_segment(body),
                data_dir,
            )
    finally:
        for stop in reversed(stack):
            await stop()


@pytest.fixture(scope="module")
async def hs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    """An HS256 server whose secret the tests know (to sign otherwise-bad tokens)."""
    async for target in _target(tmp_path_factory, secret_key=SECRET):
        yield target


@pytest.fixture(scope="module", params=["EdDSA", "ES256"])
async def asym(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    """A server signing with an asymmetric algorithm (and publishing a JWKS)."""
    async for target in _target(tmp_path_factory, jwt_algorithm=request.param):
        yield target


# -- controls: the crafting code makes tokens the server accepts -----------------------


async def test_control_resigned_copy_of_a_genuine_token_is_identical_and_accepted(
    hs: Target,
) -> None:
    resigned = hs256(hs.header, hs.claims)
    assert resigned == hs.token
    response = await hs.protected(bearer(resigned))
    assert response.status_code == 200, response.text


async def test_control_freshly_crafted_token_is_accepted(hs: Target) -> None:
    response = await hs.protected(bearer(hs256(hs.header, hs.fresh_claims())))
    assert response.status_code == 200, response.text


async def test_control_genuine_asymmetric_token_is_accepted(asym: Target) -> None:
    response = await asym.protected(bearer(asym.token))
    assert response.status_code == 200, response.text


# -- signature and algorithm ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_unsigned_alg_none_token_is_refused(hs: Target, alg: str) -> None:
    header = {**hs.header, "alg": alg}
    token = f"{b64json(header)}.{b64json(hs.fresh_claims())}."
    assert_invalid_token(await hs.protected(bearer(token)))


async def test_alg_none_with_the_original_signature_is_refused(hs: Target) -> None:
    header = {**hs.header, "alg": "none"}
    signature = hs.token.rsplit(".", 1)[1]
    token = f"{b64json(header)}.{b64json(hs.claims)}.{signature}"
    assert_invalid_token(await hs.protected(bearer(token)))


async def test_token_signed_with_another_secret_is_refused(hs: Target) -> None:
    token = hs256(hs.header, hs.fresh_claims(), key=b"attacker-secret-" * 4)
    assert_invalid_token(await hs.protected(bearer(token)))


async def test_tampered_permissions_keep_the_signature_and_are_refused(hs: Target) -> None:
    head, _, signature = hs.token.split(".")
    forged = f"{head}.{b64json({**hs.claims, 'permissions': ['admin']})}.{signature}"
    assert_invalid_token(await hs.protected(bearer(forged)))
    assert_invalid_token(await hs.http.get("/events", headers=bearer(forged)))


async def test_tampered_subject_is_refused(hs: Target) -> None:
    head, _, signature = hs.token.split(".")
    forged = f"{head}.{b64json({**hs.claims, 'sub': '1000'})}.{signature}"
    assert_invalid_token(await hs.protected(bearer(forged)))


async def test_truncated_signature_is_refused(hs: Target) -> None:
    assert_invalid_token(await hs.protected(bearer(hs.token[:-4])))


async def test_stripped_signature_is_refused(hs: Target) -> None:
    assert_invalid_token(await hs.protected(bearer(hs.token.rsplit(".", 1)[0] + ".")))


def _public_pem(jwk: dict[str, Any]) -> bytes:
    key = jwt.PyJWK(jwk).key
    assert isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("form", ["pem", "jwk-json"])
async def test_hs256_token_keyed_with_the_public_key_is_refused(asym: Target, form: str) -> None:
    """Algorithm confusion (CVE-2015-9235, CVE-2022-29217): the public key as HMAC secret."""
    jwks = (await asym.http.get("/.well-known/jwks.json")).json()
    [jwk] = [key for key in jwks["keys"] if key["kid"] == asym.header["kid"]]
    secret = _public_pem(jwk) if form == "pem" else json.dumps(jwk).encode("utf-8")
    header = {"alg": "HS256", "typ": "at+jwt", "kid": asym.header["kid"]}
    token = hs256(header, asym.fresh_claims(), key=secret)
    assert_invalid_token(await asym.protected(bearer(token)))


def _attacker_key(alg: str) -> tuple[Any, dict[str, Any]]:
    """A fresh key pair of ``alg`` and its public JWK."""
    if alg == "EdDSA":
        ed_private = ed25519.Ed25519PrivateKey.generate()
        ed_jwk: dict[str, Any] = OKPAlgorithm.to_jwk(ed_private.public_key(), as_dict=True)
        return ed_private, ed_jwk
    ec_private = ec.generate_private_key(ec.SECP256R1())
    ec_jwk: dict[str, Any] = ECAlgorithm.to_jwk(ec_private.public_key(), as_dict=True)
    return ec_private, ec_jwk


async def test_token_signed_by_an_attacker_key_under_the_servers_kid_is_refused(
    asym: Target,
) -> None:
    private, _ = _attacker_key(asym.header["alg"])
    token = jwt.encode(
        asym.fresh_claims(),
        private,
        algorithm=asym.header["alg"],
        headers={"kid": asym.header["kid"], "typ": "at+jwt"},
    )
    assert_invalid_token(await asym.protected(bearer(token)))


@pytest.mark.parametrize("with_kid", [True, False])
async def test_key_embedded_in_a_jwk_header_is_not_trusted(asym: Target, with_kid: bool) -> None:
    private, public_jwk = _attacker_key(asym.header["alg"])
    headers: dict[str, Any] = {"typ": "at+jwt", "jwk": public_jwk}
    if with_kid:
        headers["kid"] = asym.header["kid"]
    token = jwt.encode(asym.fresh_claims(), private, algorithm=asym.header["alg"], headers=headers)
    assert_invalid_token(await asym.protected(bearer(token)))


@pytest.mark.parametrize("parameter", ["jku", "x5u"])
async def test_key_url_headers_are_not_followed(asym: Target, parameter: str) -> None:
    private, _ = _attacker_key(asym.header["alg"])
    headers = {
        "typ": "at+jwt",
        "kid": asym.header["kid"],
        parameter: "https://attacker.example/keys.json",
    }
    token = jwt.encode(asym.fresh_claims(), private, algorithm=asym.header["alg"], headers=headers)
    assert_invalid_token(await asym.protected(bearer(token)))


async def test_hs256_token_with_a_jwk_header_is_refused_even_when_correctly_signed(
    hs: Target,
) -> None:
    header = {**hs.header, "jwk": {"kty": "oct", "k": b64url(SECRET_BYTES)}}
    assert_invalid_token(await hs.protected(bearer(hs256(header, hs.fresh_claims()))))


# -- header parameters ------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "jwt", "id+jwt", "", None])
async def test_token_of_another_type_is_refused(hs: Target, typ: str | None) -> None:
    header = {name: value for name, value in hs.header.items() if name != "typ"}
    if typ is not None:
        header["typ"] = typ
    assert_invalid_token(await hs.protected(bearer(hs256(header, hs.fresh_claims()))))


async def test_crit_header_is_refused(hs: Target) -> None:
    header = {**hs.header, "crit": ["x-bastion-unknown"], "x-bastion-unknown": True}
    assert_invalid_token(await hs.protected(bearer(hs256(header, hs.fresh_claims()))))


@pytest.mark.parametrize("kid", ["unknown-kid", "", 1, None])
async def test_unknown_or_malformed_kid_is_refused(hs: Target, kid: Any) -> None:
    header = {**hs.header, "kid": kid}
    if kid is None:
        del header["kid"]
    assert_invalid_token(await hs.protected(bearer(hs256(header, hs.fresh_claims()))))


# -- claims ---------------------------------------------------------------------------------


async def test_wrong_issuer_is_refused(hs: Target) -> None:
    token = hs256(hs.header, hs.fresh_claims(iss="https://evil.example"))
    assert_invalid_token(await hs.protected(bearer(token)))


@pytest.mark.parametrize("aud", ["other-service", ["other-service"], ""])
async def test_wrong_audience_is_refused(hs: Target, aud: Any) -> None:
    assert_invalid_token(await hs.protected(bearer(hs256(hs.header, hs.fresh_claims(aud=aud)))))


async def test_expired_token_is_refused(hs: Target) -> None:
    now = int(time.time())
    token = hs256(hs.header, hs.fresh_claims(iat=now - 1000, exp=now - 100))
    assert_invalid_token(await hs.protected(bearer(token)))


async def test_token_issued_in_the_future_is_refused(hs: Target) -> None:
    now = int(time.time())
    token = hs256(hs.header, hs.fresh_claims(iat=now + 3600, exp=now + 4500))
    assert_invalid_token(await hs.protected(bearer(token)))


async def test_token_not_yet_valid_is_refused(hs: Target) -> None:
    token = hs256(hs.header, hs.fresh_claims(nbf=int(time.time()) + 3600))
    assert_invalid_token(await hs.protected(bearer(token)))


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_token_missing_a_required_claim_is_refused(hs: Target, claim: str) -> None:
    token = hs256(hs.header, hs.fresh_claims(**{claim: _DROP}))
    assert_invalid_token(await hs.protected(bearer(token)))


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_token_with_a_null_required_claim_is_refused(hs: Target, claim: str) -> None:
    token = hs256(hs.header, hs.fresh_claims(**{claim: None}))
    assert_invalid_token(await hs.protected(bearer(token)))


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": 1},
        {"sub": "alice"},
        {"sub": "-1"},
        {"sub": "1" * 40},
        {"sub": "\u0661"},
        {"sid": 5},
        {"jti": ["a"]},
        {"permissions": "admin"},
        {"permissions": [1]},
        {"permissions": {"admin": True}},
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": float("inf")},
        {"exp": float("nan")},
        {"exp": 10**400},
        {"iat": float("nan")},
        {"iat": -(10**400)},
        {"nbf": float("nan")},
        {"iat": "now"},
        {"iat": [1]},
        {"iat": True},
        {"ver": "1"},
        {"ver": 1.5},
    ],
    ids=repr,
)
async def test_well_signed_token_with_a_malformed_claim_is_refused(
    hs: Target, changes: dict[str, Any]
) -> None:
    token = hs256(hs.header, hs.fresh_claims(**changes))
    assert_invalid_token(await hs.protected(bearer(token)))


async def test_well_signed_token_for_an_out_of_range_user_id_is_refused_on_lookup(
    hs: Target,
) -> None:
    token = hs256(hs.header, hs.fresh_claims(sub="9" * 19))
    assert_invalid_token(await hs.http.get("/users/me", headers=bearer(token)))


@pytest.mark.parametrize("claims", [[], "claims", 42, None], ids=repr)
async def test_well_signed_token_whose_claims_are_not_an_object_is_refused(
    hs: Target, claims: Any
) -> None:
    assert_invalid_token(await hs.protected(bearer(hs256(hs.header, claims))))


async def test_token_over_8_kib_is_refused(hs: Target) -> None:
    small = hs256(hs.header, hs.fresh_claims(pad="x" * 1024))
    assert (await hs.protected(bearer(small))).status_code == 200
    large = hs256(hs.header, hs.fresh_claims(pad="x" * 8192))
    assert len(large) > 8 * 1024
    assert_invalid_token(await hs.protected(bearer(large)))


# -- where the token is read from -----------------------------------------------------------


async def test_refresh_token_is_not_an_access_token(hs: Target) -> None:
    assert_invalid_token(await hs.protected(bearer(hs.refresh_token)))


async def test_token_in_the_query_string_is_ignored(hs: Target) -> None:
    response = await hs.http.get("/protected", params={"access_token": hs.token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_in_a_cookie_is_ignored(hs: Target) -> None:
    headers = {"Cookie": f"access_token={hs.token}; token={hs.token}"}
    response = await hs.http.get("/protected", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT", "Bearer:"])
async def test_token_under_another_scheme_is_refused(hs: Target, scheme: str) -> None:
    response = await hs.protected({"Authorization": f"{scheme} {hs.token}"})
    assert response.status_code == 401


# -- malformed strings --------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "...",
        "a.b.c",
        "a.b.c.d",
        "a.b.c.d.e",
        "!!!.@@@.###",
        "e30.e30.",
        "W10.e30.",
        "bnVsbA.e30.",
        "eyJhbGciOiJIUzI1NiJ9",
        "%7B%7D.%7B%7D.%7B%7D",
        "x" * 9000,
    ],
    ids=lambda token: token[:20],
)
async def test_malformed_token_is_refused(hs: Target, token: str) -> None:
    assert_invalid_token(await hs.protected(bearer(token)))


@pytest.mark.parametrize(
    "raw",
    [
        "\u00e9.\u00e9.\u00e9".encode(),
        b"\xff\xfe.\x80.\x81",
        "\u00e9\u00e9\u00e9".encode("latin-1"),
    ],
    ids=["utf-8", "binary", "latin-1"],
)
async def test_non_ascii_token_is_refused(hs: Target, raw: bytes) -> None:
    response = await hs.protected([(b"authorization", b"Bearer " + raw)])
    assert_invalid_token(response)


async def test_genuine_token_with_appended_junk_is_refused(hs: Target) -> None:
    assert_invalid_token(await hs.protected(bearer(hs.token + "x")))
