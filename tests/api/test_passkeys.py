"""Passkeys over HTTP with a software authenticator: registration, the list,
passwordless sign-in, passkeys as a second factor, and every tampering
(SPEC "Passkeys (WebAuthn)")."""

from __future__ import annotations

import json
from typing import Any

from tests.api.mfa_helpers import (
    MfaWorld,
    add_passkey,
    claims,
    mfa_grant,
    password_step,
    passwordless,
    passwordless_options,
    register_and_login,
    world,
)
from tests.authenticator import SoftAuthenticator
from tests.conftest import bearer, login

__all__ = ["world"]


async def test_registration_options_follow_the_webauthn_json_shape(world: MfaWorld) -> None:
    response = await world.client.post("/users/me/passkeys/options", headers=world.auth)
    assert response.status_code == 200
    options = response.json()
    assert options["rp"]["id"] == "localhost"
    assert options["attestation"] == "none"
    assert options["user"]["name"] == "alice"
    assert len(options["challenge"]) >= 22
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert options["timeout"] == 300_000


async def test_a_passkey_is_registered_listed_and_counted(world: MfaWorld) -> None:
    created = await add_passkey(world, SoftAuthenticator(), name="laptop")
    assert set(created) == {"id", "name", "created_at", "last_used_at"}
    assert created["name"] == "laptop"
    assert created["last_used_at"] is None
    listed = await world.client.get("/users/me/passkeys", headers=world.auth)
    assert listed.json() == [created]
    status = await world.client.get("/users/me/mfa", headers=world.auth)
    assert status.json() == {"totp": False, "passkeys": 1, "recovery_codes_left": 0}


async def test_registration_from_another_origin_is_refused(world: MfaWorld) -> None:
    options = (await world.client.post("/users/me/passkeys/options", headers=world.auth)).json()
    credential = SoftAuthenticator().create(options, origin="https://evil.example")
    response = await world.client.post(
        "/users/me/passkeys", json={"credential": credential}, headers=world.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credential"


async def test_registration_challenges_are_single_use(world: MfaWorld) -> None:
    options = (await world.client.post("/users/me/passkeys/options", headers=world.auth)).json()
    authenticator = SoftAuthenticator()
    first = await world.client.post(
        "/users/me/passkeys", json={"credential": authenticator.create(options)}, headers=world.auth
    )
    assert first.status_code == 201
    again = await world.client.post(
        "/users/me/passkeys", json={"credential": authenticator.create(options)}, headers=world.auth
    )
    assert again.status_code == 400


async def test_registration_rejects_malformed_credentials_with_4xx(world: MfaWorld) -> None:
    bodies: list[dict[str, Any]] = [
        {"credential": {}},
        {"credential": {"response": {"clientDataJSON": "!!"}}},
    ]
    for body in bodies:
        response = await world.client.post("/users/me/passkeys", json=body, headers=world.auth)
        assert response.status_code == 400, body
    response = await world.client.post(
        "/users/me/passkeys", json={"credential": "text"}, headers=world.auth
    )
    assert response.status_code == 422


async def test_passwordless_sign_in_gives_hwk_user(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator()
    await add_passkey(world, authenticator)
    options = await passwordless_options(world.client)
    assert options["userVerification"] == "required"
    assert not options.get("allowCredentials")
    response = await passwordless(world.client, authenticator.get(options))
    assert response.status_code == 200, response.text
    token = claims(response.json()["access_token"])
    assert token["amr"] == ["hwk", "user"]
    assert token["sub"] == str(world.user["id"])
    listed = (await world.client.get("/users/me/passkeys", headers=world.auth)).json()
    assert listed[0]["last_used_at"] is not None


async def test_a_synced_passkey_signs_in_with_swk(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator(synced=True)
    await add_passkey(world, authenticator)
    response = await passwordless(
        world.client, authenticator.get(await passwordless_options(world.client))
    )
    assert claims(response.json()["access_token"])["amr"] == ["swk", "user"]


async def _refused(world: MfaWorld, authenticator: SoftAuthenticator, **tamper: Any) -> None:
    options = await passwordless_options(world.client)
    response = await passwordless(world.client, authenticator.get(options, **tamper))
    assert response.status_code == 400, (tamper, response.text)
    assert response.json()["error"] == "invalid_grant"


async def test_every_tampering_of_an_assertion_is_invalid_grant(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator()
    await add_passkey(world, authenticator)
    await _refused(world, authenticator, origin="https://evil.example")
    await _refused(world, authenticator, rp_id="evil.example")
    await _refused(world, authenticator, bad_signature=True)
    await _refused(world, authenticator, uv=False)
    await _refused(world, authenticator, challenge="A" * 43)
    # The right assertion still works after all that (nothing was spent but
    # each ceremony's own challenge).
    good = authenticator.get(await passwordless_options(world.client))
    assert (await passwordless(world.client, good)).status_code == 200


async def test_an_assertion_cannot_be_replayed(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator()
    await add_passkey(world, authenticator)
    assertion = authenticator.get(await passwordless_options(world.client))
    assert (await passwordless(world.client, assertion)).status_code == 200
    assert (await passwordless(world.client, assertion)).status_code == 400


async def test_a_sign_count_that_goes_backwards_is_refused(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator()
    await add_passkey(world, authenticator)
    for _ in range(3):
        options = await passwordless_options(world.client)
        assert (await passwordless(world.client, authenticator.get(options))).status_code == 200
    await _refused(world, authenticator, sign_count=2)
    await _refused(world, authenticator, sign_count=3)


async def test_a_malformed_passkey_grant_is_400(world: MfaWorld) -> None:
    for value in ("{", "[]", json.dumps({"id": "x"}), "null"):
        response = await world.client.post(
            "/auth/token",
            data={"grant_type": "urn:bastion:params:oauth:grant-type:passkey", "webauthn": value},
        )
        assert response.status_code == 400, value
    response = await world.client.post(
        "/auth/token", data={"grant_type": "urn:bastion:params:oauth:grant-type:passkey"}
    )
    assert response.json()["error"] == "invalid_request"


async def test_passkey_options_take_no_body_or_an_empty_object(world: MfaWorld) -> None:
    assert (await world.client.post("/auth/passkey/options", json={})).status_code == 200
    assert (await world.client.post("/auth/passkey/options", json={"a": 1})).status_code == 422


async def test_a_passkey_is_a_second_factor_after_the_password(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator()
    await add_passkey(world, authenticator)
    step = await password_step(world.client)
    assert step["mfa_methods"] == ["webauthn"]
    options = await world.client.post(
        "/auth/mfa/webauthn/options", json={"mfa_token": step["mfa_token"]}
    )
    assert options.status_code == 200
    allowed = options.json()["allowCredentials"]
    assert len(allowed) == 1
    response = await mfa_grant(
        world.client,
        step["mfa_token"],
        webauthn=json.dumps(authenticator.get(options.json(), uv=False)),
    )
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["amr"] == ["pwd", "hwk", "mfa"]


async def test_a_second_factor_challenge_serves_only_its_own_login(world: MfaWorld) -> None:
    authenticator = SoftAuthenticator()
    await add_passkey(world, authenticator)
    first = await password_step(world.client)
    second = await password_step(world.client)
    options = await world.client.post(
        "/auth/mfa/webauthn/options", json={"mfa_token": first["mfa_token"]}
    )
    assertion = json.dumps(authenticator.get(options.json()))
    response = await mfa_grant(world.client, second["mfa_token"], webauthn=assertion)
    assert response.status_code == 400


async def test_webauthn_options_need_a_live_mfa_token(world: MfaWorld) -> None:
    response = await world.client.post("/auth/mfa/webauthn/options", json={"mfa_token": "nope"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_grant"


async def test_another_users_passkey_is_404_and_ones_own_is_deleted(world: MfaWorld) -> None:
    created = await add_passkey(world, SoftAuthenticator())
    bob = await register_and_login(world.client, "bob")
    response = await world.client.delete(f"/users/me/passkeys/{created['id']}", headers=bearer(bob))
    assert response.status_code == 404
    response = await world.client.delete(f"/users/me/passkeys/{created['id']}", headers=world.auth)
    assert response.status_code == 204
    assert (await world.client.get("/users/me/passkeys", headers=world.auth)).json() == []
    # No factor left: the password alone logs in again.
    await login(world.client, "alice")
