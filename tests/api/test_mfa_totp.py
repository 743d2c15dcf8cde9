"""TOTP over HTTP: enrolment, the MFA login step, replay, skew, recovery codes,
disable, admin reset, require_mfa (SPEC "Multi-factor authentication")."""

from __future__ import annotations

import asyncio
import json

import httpx

from bastion.types import User
from tests.api.mfa_helpers import (
    MfaWorld,
    claims,
    code,
    enable_totp,
    mfa_grant,
    password_step,
    world,
)
from tests.conftest import GOOD_PASSWORD, bearer, login, make_admin

__all__ = ["world"]


async def test_enrolment_returns_secret_uri_and_svg_and_stays_pending(world: MfaWorld) -> None:
    response = await world.client.post(
        "/users/me/mfa/totp", json={"current_password": GOOD_PASSWORD}, headers=world.auth
    )
    assert response.status_code == 201
    body = response.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].lstrip().startswith("<svg")
    status = await world.client.get("/users/me/mfa", headers=world.auth)
    assert status.json() == {"totp": False, "passkeys": 0, "recovery_codes_left": 0}
    # Pending is not on: the password alone still logs in.
    await login(world.client, "alice")


async def test_enrolment_with_a_wrong_password_is_400_wrong_password(world: MfaWorld) -> None:
    response = await world.client.post(
        "/users/me/mfa/totp",
        json={"current_password": "not my password at all"},
        headers=world.auth,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_password"


async def test_confirm_turns_totp_on_with_ten_distinct_recovery_codes(world: MfaWorld) -> None:
    _, codes = await enable_totp(world)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    status = await world.client.get("/users/me/mfa", headers=world.auth)
    assert status.json() == {"totp": True, "passkeys": 0, "recovery_codes_left": 10}


async def test_confirm_with_a_wrong_code_is_400_and_leaves_totp_off(world: MfaWorld) -> None:
    enrol = await world.client.post(
        "/users/me/mfa/totp", json={"current_password": GOOD_PASSWORD}, headers=world.auth
    )
    wrong = "000000" if code(enrol.json()["secret"], world.clock) != "000000" else "111111"
    response = await world.client.post(
        "/users/me/mfa/totp/confirm", json={"code": wrong}, headers=world.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_code"
    assert (await world.client.get("/users/me/mfa", headers=world.auth)).json()["totp"] is False


async def test_password_alone_gets_403_mfa_required_and_no_token(world: MfaWorld) -> None:
    await enable_totp(world)
    body = await password_step(world.client)
    assert set(body) == {"error", "error_description", "mfa_token", "mfa_methods", "expires_in"}
    assert body["mfa_methods"] == ["otp", "recovery_code"]
    assert body["expires_in"] == 300
    assert "access_token" not in body


async def test_the_mfa_grant_with_a_totp_code_issues_tokens_with_amr(world: MfaWorld) -> None:
    secret, _ = await enable_totp(world)
    step = await password_step(world.client)
    response = await mfa_grant(world.client, step["mfa_token"], otp=code(secret, world.clock))
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert claims(tokens["access_token"])["amr"] == ["pwd", "otp", "mfa"]
    assert (await world.client.get("/protected", headers=bearer(tokens))).status_code == 200
    # amr survives a refresh.
    refreshed = await world.client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert claims(refreshed.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]


async def test_a_code_is_accepted_once(world: MfaWorld) -> None:
    secret, _ = await enable_totp(world)
    otp = code(secret, world.clock)
    first = await mfa_grant(world.client, (await password_step(world.client))["mfa_token"], otp=otp)
    assert first.status_code == 200
    again = await mfa_grant(world.client, (await password_step(world.client))["mfa_token"], otp=otp)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_two_concurrent_logins_with_one_code_give_exactly_one_success(
    world: MfaWorld,
) -> None:
    secret, _ = await enable_totp(world)
    otp = code(secret, world.clock)
    tokens = [(await password_step(world.client))["mfa_token"] for _ in range(2)]
    results = await asyncio.gather(*(mfa_grant(world.client, t, otp=otp) for t in tokens))
    assert sorted(r.status_code for r in results) == [200, 400]


async def test_one_step_of_skew_is_accepted_either_way_and_two_are_not(world: MfaWorld) -> None:
    secret, _ = await enable_totp(world)
    for steps, expected in ((-2, 400), (2, 400), (-1, 200), (1, 200)):
        world.clock.advance(120)  # fresh steps, past any used one
        token = (await password_step(world.client))["mfa_token"]
        response = await mfa_grant(world.client, token, otp=code(secret, world.clock, steps))
        assert response.status_code == expected, (steps, response.text)


async def test_a_recovery_code_works_once(world: MfaWorld) -> None:
    _, codes = await enable_totp(world)
    token = (await password_step(world.client))["mfa_token"]
    used = await mfa_grant(world.client, token, recovery_code=codes[0])
    assert used.status_code == 200
    assert claims(used.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]
    token = (await password_step(world.client))["mfa_token"]
    assert (await mfa_grant(world.client, token, recovery_code=codes[0])).status_code == 400
    status = await world.client.get("/users/me/mfa", headers=world.auth)
    assert status.json()["recovery_codes_left"] == 9


async def test_recovery_codes_are_typed_forgivingly(world: MfaWorld) -> None:
    _, codes = await enable_totp(world)
    typed = codes[1].upper().replace("-", " ")
    token = (await password_step(world.client))["mfa_token"]
    assert (await mfa_grant(world.client, token, recovery_code=typed)).status_code == 200


async def test_a_new_set_of_recovery_codes_voids_the_old(world: MfaWorld) -> None:
    _, old = await enable_totp(world)
    response = await world.client.post(
        "/users/me/mfa/recovery-codes", json={"current_password": GOOD_PASSWORD}, headers=world.auth
    )
    assert response.status_code == 200
    new = response.json()["recovery_codes"]
    assert len(new) == 10
    assert not set(new) & set(old)
    token = (await password_step(world.client))["mfa_token"]
    assert (await mfa_grant(world.client, token, recovery_code=old[0])).status_code == 400
    assert (await mfa_grant(world.client, token, recovery_code=new[0])).status_code == 200


async def test_new_recovery_codes_need_the_current_password(world: MfaWorld) -> None:
    await enable_totp(world)
    response = await world.client.post(
        "/users/me/mfa/recovery-codes",
        json={"current_password": "wrong wrong wrong wrong"},
        headers=world.auth,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_password"


async def test_an_mfa_token_dies_after_five_wrong_codes(world: MfaWorld) -> None:
    secret, _ = await enable_totp(world)
    token = (await password_step(world.client))["mfa_token"]
    wrong = "123456" if code(secret, world.clock) != "123456" else "654321"
    for _ in range(5):
        assert (await mfa_grant(world.client, token, otp=wrong)).status_code == 400
    # Past the throttle's delay and within the token's 5 minutes.
    world.clock.advance(90)
    late = await mfa_grant(world.client, token, otp=code(secret, world.clock))
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"


async def test_wrong_codes_count_as_failed_logins_for_the_throttle(world: MfaWorld) -> None:
    secret, _ = await enable_totp(world)
    wrong = "000000" if code(secret, world.clock) != "000000" else "111111"
    token = (await password_step(world.client))["mfa_token"]
    for _ in range(5):
        assert (await mfa_grant(world.client, token, otp=wrong)).status_code == 400
    # The right password is now held back too (SPEC: 429 even to the right password).
    response = await world.client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": GOOD_PASSWORD},
    )
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_an_mfa_token_is_single_use_and_expires(world: MfaWorld) -> None:
    secret, _ = await enable_totp(world)
    token = (await password_step(world.client))["mfa_token"]
    assert (await mfa_grant(world.client, token, otp=code(secret, world.clock))).status_code == 200
    world.clock.advance(30)
    assert (await mfa_grant(world.client, token, otp=code(secret, world.clock))).status_code == 400
    token = (await password_step(world.client))["mfa_token"]
    world.clock.advance(301)
    response = await mfa_grant(world.client, token, otp=code(secret, world.clock))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_malformed_mfa_grants_are_400_never_500(world: MfaWorld) -> None:
    _secret, _ = await enable_totp(world)
    token = (await password_step(world.client))["mfa_token"]
    cases = [
        (
            {"grant_type": "urn:bastion:params:oauth:grant-type:mfa", "otp": "123456"},
            "invalid_request",
        ),
        (
            {"grant_type": "urn:bastion:params:oauth:grant-type:mfa", "mfa_token": token},
            "invalid_request",
        ),
        (
            {
                "grant_type": "urn:bastion:params:oauth:grant-type:mfa",
                "mfa_token": token,
                "otp": "1",
                "recovery_code": "2",
            },
            "invalid_request",
        ),
        (
            {
                "grant_type": "urn:bastion:params:oauth:grant-type:mfa",
                "mfa_token": "x" * 40,
                "otp": "1",
            },
            "invalid_grant",
        ),
        (
            {
                "grant_type": "urn:bastion:params:oauth:grant-type:mfa",
                "mfa_token": token,
                "webauthn": "{not json",
            },
            "invalid_grant",
        ),
        (
            {
                "grant_type": "urn:bastion:params:oauth:grant-type:mfa",
                "mfa_token": token,
                "otp": "١٢٣٤٥٦",
            },
            "invalid_grant",
        ),
    ]
    for data, error in cases:
        response = await world.client.post("/auth/token", data=data)
        assert response.status_code == 400, (data, response.text)
        assert response.json()["error"] == error, data


async def test_malformed_codes_on_json_routes_are_4xx(world: MfaWorld) -> None:
    await world.client.post(
        "/users/me/mfa/totp", json={"current_password": GOOD_PASSWORD}, headers=world.auth
    )
    for body, status in (
        ({"code": "x" * 100}, 422),
        ({"code": 123456}, 422),
        ({"code": "abc"}, 400),
    ):
        response = await world.client.post(
            "/users/me/mfa/totp/confirm", json=body, headers=world.auth
        )
        assert response.status_code == status, body
    response = await world.client.post(
        "/users/me/mfa/totp/confirm",
        content=b"code=1",
        headers={**world.auth, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


async def test_disable_needs_password_and_code_then_password_alone_logs_in(
    world: MfaWorld,
) -> None:
    secret, _ = await enable_totp(world)
    wrong = await world.client.post(
        "/users/me/mfa/totp/disable",
        json={
            "current_password": GOOD_PASSWORD,
            "code": "000000" if code(secret, world.clock) != "000000" else "111111",
        },
        headers=world.auth,
    )
    assert wrong.status_code == 400
    response = await world.client.post(
        "/users/me/mfa/totp/disable",
        json={"current_password": GOOD_PASSWORD, "code": code(secret, world.clock)},
        headers=world.auth,
    )
    assert response.status_code == 204
    tokens = await login(world.client, "alice")
    assert claims(tokens["access_token"])["amr"] == ["pwd"]


async def test_disable_accepts_a_recovery_code(world: MfaWorld) -> None:
    _, codes = await enable_totp(world)
    response = await world.client.post(
        "/users/me/mfa/totp/disable",
        json={"current_password": GOOD_PASSWORD, "code": codes[3]},
        headers=world.auth,
    )
    assert response.status_code == 204
    status = await world.client.get("/users/me/mfa", headers=world.auth)
    assert status.json() == {"totp": False, "passkeys": 0, "recovery_codes_left": 0}


class _Recorder:
    def __init__(self) -> None:
        self.users: list[int] = []

    async def mfa_reset(self, user: User) -> None:
        self.users.append(user.id)


async def test_admin_reset_removes_every_factor_and_notifies_the_user(world: MfaWorld) -> None:
    await enable_totp(world)
    recorder = _Recorder()
    world.server.bastion.container.mfa.mfa.notifier = recorder
    await make_admin(world.server)
    admin = await login(world.client, "root")
    user_id = world.user["id"]
    assert (
        await world.client.post(f"/users/{user_id}/mfa/reset", headers=world.auth)
    ).status_code == 403
    response = await world.client.post(f"/users/{user_id}/mfa/reset", headers=bearer(admin))
    assert response.status_code == 204
    assert recorder.users == [user_id]
    assert (
        await world.client.post("/users/999999/mfa/reset", headers=bearer(admin))
    ).status_code == 404
    await login(world.client, "alice")


async def test_events_record_mfa_and_never_carry_secrets_or_codes(world: MfaWorld) -> None:
    secret, codes = await enable_totp(world)
    token = (await password_step(world.client))["mfa_token"]
    await mfa_grant(world.client, token, otp="000000")
    await mfa_grant(world.client, token, recovery_code=codes[0])
    await make_admin(world.server)
    admin = await login(world.client, "root")
    response = await world.client.get("/events", params={"limit": 200}, headers=bearer(admin))
    events = response.json()["events"]
    types = {event["type"] for event in events}
    assert {"mfa_enabled", "authn_mfa_fail", "authn_recovery_code_used"} <= types
    text = json.dumps(events)
    for leaked in (secret, token, *codes, codes[0].replace("-", "")):
        assert leaked not in text


async def test_require_mfa_refuses_a_password_session_with_rfc9470_challenge(
    world: MfaWorld,
) -> None:
    from fastapi import Depends, FastAPI

    from bastion import Bastion, Principal

    app = FastAPI()
    auth = Bastion(world.server.bastion.settings, clock=world.clock)
    auth.install(app)

    @app.get("/vault")
    async def vault(principal: Principal = Depends(auth.require_mfa())) -> dict[str, int]:
        return {"user": principal.user_id}

    secret, _ = await enable_totp(world)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as local:
            refused = await local.get("/vault", headers=world.auth)
            assert refused.status_code == 403
            assert refused.headers["www-authenticate"] == (
                'Bearer error="insufficient_user_authentication"'
            )
            token = (await password_step(world.client))["mfa_token"]
            strong = await mfa_grant(world.client, token, otp=code(secret, world.clock))
            allowed = await local.get("/vault", headers=bearer(strong.json()))
            assert allowed.status_code == 200
            assert allowed.json() == {"user": world.user["id"]}
