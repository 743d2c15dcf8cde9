"""Shared steps of the MFA and passkey API tests."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from tests.authenticator import SoftAuthenticator
from tests.conftest import (
    GOOD_PASSWORD,
    ManualClock,
    RunningServer,
    ServerFactory,
    bearer,
    login,
    register,
)

MFA_GRANT = "urn:bastion:params:oauth:grant-type:mfa"
PASSKEY_GRANT = "urn:bastion:params:oauth:grant-type:passkey"


@dataclass
class MfaWorld:
    """A server on a manual clock, a client, and alice signed in."""

    server: RunningServer
    client: httpx.AsyncClient
    clock: ManualClock
    user: dict[str, Any]
    tokens: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        """Alice's bearer header."""
        return bearer(self.tokens)


@pytest.fixture
async def world(start_server: ServerFactory) -> AsyncIterator[MfaWorld]:
    """Alice registered and logged in on a server with a manual clock."""
    # Mid-step, so a code of the current step stays current for a while.
    clock = ManualClock(1_800_000_000.0 + 10)
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user = await register(client, "alice")
        tokens = await login(client, "alice")
        yield MfaWorld(server, client, clock, user, tokens)


def claims(access_token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the server verified it)."""
    payload = access_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def code(secret: str, clock: ManualClock, steps: int = 0) -> str:
    """The TOTP code an authenticator app shows at the test's time."""
    return pyotp.TOTP(secret).at(clock.now() + steps * 30)


async def enable_totp(world: MfaWorld) -> tuple[str, list[str]]:
    """Enrol and confirm TOTP for alice; returns the secret and recovery codes."""
    enrol = await world.client.post(
        "/users/me/mfa/totp", json={"current_password": GOOD_PASSWORD}, headers=world.auth
    )
    assert enrol.status_code == 201, enrol.text
    secret = enrol.json()["secret"]
    confirm = await world.client.post(
        "/users/me/mfa/totp/confirm", json={"code": code(secret, world.clock)}, headers=world.auth
    )
    assert confirm.status_code == 200, confirm.text
    codes: list[str] = confirm.json()["recovery_codes"]
    # The confirming code's step is spent; logins use the next one.
    world.clock.advance(30)
    return secret, codes


async def password_step(client: httpx.AsyncClient, username: str = "alice") -> dict[str, Any]:
    """A password grant that must answer ``mfa_required``; its body."""
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": GOOD_PASSWORD},
    )
    assert response.status_code == 403, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "mfa_required"
    return body


async def mfa_grant(client: httpx.AsyncClient, mfa_token: str, **answer: str) -> httpx.Response:
    """The second step with one answer (``otp=``, ``recovery_code=`` or ``webauthn=``)."""
    return await client.post(
        "/auth/token", data={"grant_type": MFA_GRANT, "mfa_token": mfa_token, **answer}
    )


async def add_passkey(
    world: MfaWorld, authenticator: SoftAuthenticator, name: str = "laptop"
) -> dict[str, Any]:
    """Register a passkey of ``authenticator`` for alice; its JSON."""
    options = await world.client.post("/users/me/passkeys/options", headers=world.auth)
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json())
    created = await world.client.post(
        "/users/me/passkeys", json={"credential": credential, "name": name}, headers=world.auth
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def passwordless(client: httpx.AsyncClient, assertion: dict[str, Any]) -> httpx.Response:
    """The passkey grant with an assertion."""
    return await client.post(
        "/auth/token", data={"grant_type": PASSKEY_GRANT, "webauthn": json.dumps(assertion)}
    )


async def passwordless_options(client: httpx.AsyncClient) -> dict[str, Any]:
    """Request options for passwordless sign-in."""
    response = await client.post("/auth/passkey/options")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def register_and_login(client: httpx.AsyncClient, username: str) -> dict[str, Any]:
    """Register ``username`` and return its token response."""
    await register(client, username)
    return await login(client, username)
