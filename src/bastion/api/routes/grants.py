"""Extension grants of the token endpoint (RFC 6749 §4.5): the MFA step and
passwordless passkey sign-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bastion.errors import InvalidRequest
from bastion.services.mfa_login import OTP, RECOVERY_CODE, WEBAUTHN
from bastion.types import RequestContext, TokenPair

if TYPE_CHECKING:
    from bastion.api.app import Bastion

MFA_GRANT = "urn:bastion:params:oauth:grant-type:mfa"
PASSKEY_GRANT = "urn:bastion:params:oauth:grant-type:passkey"

#: Reads one form field (``None`` when absent); raises ``ValueError`` when repeated.
FieldReader = Callable[[str], "str | None"]
ExtensionGrant = Callable[[FieldReader, "RequestContext"], Awaitable[TokenPair]]


def extension_grants(auth: Bastion) -> dict[str, ExtensionGrant]:
    """The handlers of the extension grant types, by ``grant_type``."""
    login = auth.container.mfa.login

    async def mfa(field: FieldReader, context: RequestContext) -> TokenPair:
        mfa_token = field("mfa_token")
        if not mfa_token:
            raise InvalidRequest("mfa_token is required")
        answers = {name: field(name) for name in (OTP, RECOVERY_CODE, WEBAUTHN)}
        given = [(name, value) for name, value in answers.items() if value is not None]
        if len(given) != 1:
            raise InvalidRequest("send exactly one of otp, recovery_code, webauthn")
        method, answer = given[0]
        return await login.grant(mfa_token, method=method, answer=answer, context=context)

    async def passkey(field: FieldReader, context: RequestContext) -> TokenPair:
        credential = field(WEBAUTHN)
        if not credential:
            raise InvalidRequest("webauthn is required (the assertion's JSON)")
        return await login.passwordless_grant(credential, context=context)

    return {MFA_GRANT: mfa, PASSKEY_GRANT: passkey}
