"""WebAuthn ceremonies (W3C Web Authentication Level 3) on py_webauthn.

Pure functions: options out, verified facts in, :class:`WebAuthnFailed` for
anything that does not check out. The challenge store, the credentials and
the user belong to the services; this module never sees them.

Attestation is ``none`` (we do not vet authenticator makes), so registration
proves possession of the new key, not where it lives. Origins and the RP ID
are pinned (§7.1 steps 9 and 13, §7.2 steps 13 and 15), and a sign count that
does not grow is refused as a possible clone (§6.1.1).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

#: W3C WebAuthn §5.4.3: the ceremony timeout hint; also the challenge's life.
CHALLENGE_TTL_SECONDS = 300
#: §13.4.3: at least 16 random bytes.
CHALLENGE_BYTES = 32
#: §5.4.3: user handles are at most 64 bytes, and never personal data.
USER_HANDLE_BYTES = 32
#: A browser's toJSON() of a credential is a few kilobytes at most.
MAX_CREDENTIAL_JSON = 16 * 1024


class WebAuthnFailed(ValueError):
    """A credential or assertion that does not verify (the reason is logged, not shown)."""


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who we are to authenticators.

    Attributes:
        id: The RP ID, a registrable domain suffix of the origins.
        name: Shown by the authenticator at registration.
        origins: Exact origins a ceremony may come from.
    """

    id: str
    name: str
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A verified registration."""

    credential_id: str
    public_key: bytes
    sign_count: int
    backed_up: bool
    multi_device: bool
    user_verified: bool


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """A verified authentication."""

    sign_count: int
    user_verified: bool
    multi_device: bool


def b64url(data: bytes) -> str:
    """Unpadded base64url, as WebAuthn's JSON forms use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Decode unpadded base64url.

    Raises:
        WebAuthnFailed: not base64url.
    """
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise WebAuthnFailed("malformed base64url") from exc


def new_challenge() -> bytes:
    """A fresh random challenge."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def new_user_handle() -> bytes:
    """A fresh opaque user handle (§14.6.1: no personal data in it)."""
    return secrets.token_bytes(USER_HANDLE_BYTES)


def registration_options(
    rp: RelyingParty,
    *,
    challenge: bytes,
    user_handle: bytes,
    user_name: str,
    exclude: list[str],
) -> dict[str, Any]:
    """Creation options, as ``PublicKeyCredential.parseCreationOptionsFromJSON`` takes them.

    A discoverable credential with user verification is preferred, so a new
    passkey can serve passwordless sign-in as well as a second factor.
    """
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=user_name,
        challenge=challenge,
        timeout=CHALLENGE_TTL_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=from_b64url(c)) for c in exclude],
    )
    return dict(options_to_json_dict(options))


def authentication_options(
    rp: RelyingParty, *, challenge: bytes, allow: list[str] | None, require_uv: bool
) -> dict[str, Any]:
    """Request options, as ``PublicKeyCredential.parseRequestOptionsFromJSON`` takes them.

    ``allow=None`` asks for a discoverable credential (passwordless sign-in).
    """
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=CHALLENGE_TTL_SECONDS * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=from_b64url(c)) for c in allow or []],
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if require_uv
            else UserVerificationRequirement.PREFERRED
        ),
    )
    return dict(options_to_json_dict(options))


def parse_credential(value: Any) -> dict[str, Any]:
    """A credential's JSON (an object, or its text from a form field).

    Raises:
        WebAuthnFailed: not a JSON object of sane size.
    """
    if isinstance(value, str):
        if len(value) > MAX_CREDENTIAL_JSON:
            raise WebAuthnFailed("the credential is too large")
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise WebAuthnFailed("the credential is not JSON") from exc
    if not isinstance(value, dict):
        raise WebAuthnFailed("the credential must be a JSON object")
    return value


def challenge_of(credential: dict[str, Any]) -> str:
    """The challenge the client signed (from ``clientDataJSON``), to find the
    ceremony it answers; verification proper checks it again.

    Raises:
        WebAuthnFailed: no readable challenge.
    """
    response = credential.get("response")
    raw = response.get("clientDataJSON") if isinstance(response, dict) else None
    if not isinstance(raw, str) or len(raw) > MAX_CREDENTIAL_JSON:
        raise WebAuthnFailed("clientDataJSON is missing")
    try:
        client_data = json.loads(from_b64url(raw))
    except ValueError as exc:
        raise WebAuthnFailed("clientDataJSON is malformed") from exc
    challenge = client_data.get("challenge") if isinstance(client_data, dict) else None
    if not isinstance(challenge, str) or not 16 <= len(challenge) <= 128:
        raise WebAuthnFailed("clientDataJSON carries no challenge")
    return challenge


def credential_id_of(credential: dict[str, Any]) -> str:
    """The credential's ``id`` (base64url).

    Raises:
        WebAuthnFailed: none, or not a string of sane size.
    """
    value = credential.get("id")
    if not isinstance(value, str) or not 1 <= len(value) <= 1400:
        raise WebAuthnFailed("the credential has no id")
    return value


def verify_registration(
    rp: RelyingParty, credential: dict[str, Any], *, challenge: bytes
) -> NewCredential:
    """Verify an attestation response (§7.1).

    Raises:
        WebAuthnFailed: for any failure.
    """
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
        )
    except Exception as exc:  # the library raises many kinds on malformed input
        raise WebAuthnFailed(str(exc)[:200]) from exc
    return NewCredential(
        credential_id=b64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        backed_up=verified.credential_backed_up,
        multi_device=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        user_verified=verified.user_verified,
    )


def verify_assertion(
    rp: RelyingParty,
    credential: dict[str, Any],
    *,
    challenge: bytes,
    public_key: bytes,
    sign_count: int,
    require_uv: bool,
) -> VerifiedAssertion:
    """Verify an assertion (§7.2), the sign count included.

    Raises:
        WebAuthnFailed: for any failure.
    """
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=require_uv,
        )
    except Exception as exc:  # the library raises many kinds on malformed input
        raise WebAuthnFailed(str(exc)[:200]) from exc
    return VerifiedAssertion(
        sign_count=verified.new_sign_count,
        user_verified=verified.user_verified,
        multi_device=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
    )


def user_handle_of(credential: dict[str, Any]) -> str | None:
    """The ``userHandle`` an authenticator returned with a discoverable credential."""
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    return handle if isinstance(handle, str) and handle else None
