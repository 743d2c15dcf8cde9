"""A software WebAuthn authenticator and client, for tests.

It produces exactly what a browser's ``PublicKeyCredential.toJSON()`` gives
(W3C WebAuthn Level 3 §5.1.8, ``RegistrationResponseJSON`` and
``AuthenticationResponseJSON``): base64url fields, ``clientDataJSON`` as the
browser serialises it, a CBOR attestation object of format ``none``, and
ES256 signatures over ``authenticatorData || SHA-256(clientDataJSON)``.
Every field can be tampered with, to prove the server checks it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
ORIGIN = "http://localhost:8000"
RP_ID = "localhost"


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """One key pair held by the authenticator."""

    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """A platform authenticator with ES256 keys.

    Attributes:
        synced: Report the credential as backup eligible and backed up (a
            synced passkey: ``swk``); otherwise device-bound (``hwk``).
        uv: Whether it verifies the user (PIN, biometrics).
    """

    synced: bool = False
    uv: bool = True
    credentials: list[Credential] = field(default_factory=list)

    def _flags(self, *, uv: bool, attested: bool) -> int:
        flags = UP | (UV if uv else 0) | (BE | BS if self.synced else 0)
        return flags | (AT if attested else 0)

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        challenge: str | None = None,
        uv: bool | None = None,
    ) -> dict[str, Any]:
        """Answer creation options as ``navigator.credentials.create()`` + ``toJSON()``."""
        uv = self.uv if uv is None else uv
        key = ec.generate_private_key(ec.SECP256R1())
        credential_id = os.urandom(32)
        handle = unb64url(options["user"]["id"])
        self.credentials.append(Credential(credential_id, key, handle))
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        attested = bytes(16) + struct.pack(">H", len(credential_id)) + credential_id + cose
        auth_data = (
            rp_hash + bytes([self._flags(uv=uv, attested=True)]) + struct.pack(">I", 0) + attested
        )
        client_data = _client_data("webauthn.create", challenge or options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "authenticatorData": b64url(auth_data),
                "transports": ["internal", "hybrid"],
                "publicKeyAlgorithm": -7,
                "publicKey": b64url(spki),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {"credProps": {"rk": True}},
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        challenge: str | None = None,
        uv: bool | None = None,
        sign_count: int | None = None,
        bad_signature: bool = False,
    ) -> dict[str, Any]:
        """Answer request options as ``navigator.credentials.get()`` + ``toJSON()``."""
        uv = self.uv if uv is None else uv
        chosen = credential or self._pick(options)
        chosen.sign_count = chosen.sign_count + 1 if sign_count is None else sign_count
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = (
            rp_hash
            + bytes([self._flags(uv=uv, attested=False)])
            + struct.pack(">I", chosen.sign_count)
        )
        client_data = _client_data("webauthn.get", challenge or options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = chosen.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        if bad_signature:
            signature = chosen.key.sign(signed + b"x", ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(chosen.credential_id),
            "rawId": b64url(chosen.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(chosen.user_handle),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    def _pick(self, options: dict[str, Any]) -> Credential:
        allowed = {item["id"] for item in options.get("allowCredentials") or []}
        for credential in self.credentials:
            if not allowed or b64url(credential.credential_id) in allowed:
                return credential
        raise LookupError("no credential for these options")


def _client_data(type_: str, challenge: str, origin: str) -> bytes:
    # Browsers serialise type, challenge, origin, crossOrigin in this order
    # (§5.8.1.1 "limited verification algorithm").
    return json.dumps(
        {"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()
