"""Signing keys for access tokens and the ring that holds them.

The ring is ordered oldest to newest and the newest signs (itsdangerous'
``Signer.secret_keys``): after a rotation, tokens signed with an older key keep
verifying until they expire, and only then is the old key retired.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

Algorithm = Literal["HS256", "EdDSA", "ES256"]
#: Bytes of a generated HS256 secret: the size of the SHA-256 output (RFC 7518 §3.2).
GENERATED_SECRET_BYTES = 32

PrivateKey = bytes | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = bytes | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of the ring.

    Attributes:
        kid: Key id, put in the token header.
        algorithm: The one JWS algorithm this key may be used with.
        private: Signing material (the secret bytes for HS256).
        public: Verifying material (the same secret for HS256).
        created_at: Epoch seconds; decides retirement.
    """

    kid: str
    algorithm: Algorithm
    private: PrivateKey
    public: PublicKey
    created_at: float

    def public_jwk(self) -> dict[str, Any] | None:
        """The public key as a JWK, or ``None`` for a symmetric key."""
        if isinstance(self.public, ed25519.Ed25519PublicKey):
            jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        elif isinstance(self.public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            return None
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _new_kid() -> str:
    return secrets.token_urlsafe(12)


def key_from_secret(secret: bytes, *, created_at: float = 0.0) -> SigningKey:
    """An HS256 key from configured secret bytes.

    Its kid is derived from a hash of the secret so that every instance
    configured with the same secret names it alike; the hash reveals nothing
    usable of a 256-bit secret.
    """
    kid = "cfg-" + hashlib.sha256(b"bastion.kid\x00" + secret).hexdigest()[:16]
    return SigningKey(kid, "HS256", secret, secret, created_at)


def generate_key(algorithm: Algorithm, *, created_at: float) -> SigningKey:
    """A fresh random key for ``algorithm``."""
    if algorithm == "HS256":
        secret = secrets.token_bytes(GENERATED_SECRET_BYTES)
        return SigningKey(_new_kid(), algorithm, secret, secret, created_at)
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(_new_kid(), algorithm, private, private.public_key(), created_at)


def key_to_record(key: SigningKey) -> dict[str, Any]:
    """A JSON-serialisable form of ``key``, private material included."""
    if isinstance(key.private, bytes):
        material = base64.b64encode(key.private).decode("ascii")
    else:
        material = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
    return {
        "kid": key.kid,
        "alg": key.algorithm,
        "created_at": key.created_at,
        "material": material,
    }


def key_from_record(record: dict[str, Any]) -> SigningKey:
    """Inverse of :func:`key_to_record`.

    Raises:
        ValueError: when the record is malformed.
    """
    algorithm = record["alg"]
    kid = str(record["kid"])
    created_at = float(record["created_at"])
    material = str(record["material"])
    if algorithm == "HS256":
        secret = base64.b64decode(material)
        return SigningKey(kid, "HS256", secret, secret, created_at)
    private = serialization.load_pem_private_key(material.encode("ascii"), password=None)
    if algorithm == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
        return SigningKey(kid, "EdDSA", private, private.public_key(), created_at)
    if algorithm == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        return SigningKey(kid, "ES256", private, private.public_key(), created_at)
    raise ValueError(f"key {kid}: material does not match algorithm {algorithm!r}")


class KeyRing:
    """Keys ordered oldest to newest; the newest signs, all of them verify.

    Args:
        keys: At least one key, oldest first.
    """

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in keys}

    @property
    def signing_key(self) -> SigningKey:
        """The newest key."""
        return self._keys[-1]

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every key, oldest first."""
        return self._keys

    def find(self, kid: str) -> SigningKey | None:
        """The key named ``kid``, if the ring holds it."""
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set (RFC 7517 §5) of the asymmetric keys."""
        jwks = [jwk for key in self._keys if (jwk := key.public_jwk()) is not None]
        return {"keys": jwks}
