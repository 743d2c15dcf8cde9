"""Signing keys over HTTP: the JWKS, key persistence and rotation.

Keys live in the data directory whatever the database is, so these tests run
on SQLite only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bastion import Settings, create_app
from bastion.storage.keyfile import KEY_FILE, KeyFile
from tests.conftest import (
    UNLIMITED,
    RunningServer,
    ServerFactory,
    SettingsFactory,
    _serve,
    bearer,
    login,
    register,
)


@pytest.fixture
def backend() -> str:
    """Keys live in the data directory whatever the database: SQLite suffices."""
    return "sqlite"


SECRET = "a configured secret, 32 bytes or more"


def header_of(token: str) -> dict[str, Any]:
    """The JOSE header of ``token``, unverified."""
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


def mode(path: Path) -> int:
    """Permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def verify_outside(jwks: dict[str, Any], token: str, algorithm: str) -> dict[str, Any]:
    """Verify ``token`` as a third party would: with the published key, pinned."""
    [jwk] = [key for key in jwks["keys"] if key["kid"] == header_of(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=[algorithm],
        audience="bastion",
        issuer="bastion",
    )
    return claims


async def bastion_cli(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """Run the ``bastion`` command with ``BASTION_*`` variables ``env``; (status, output)."""
    command = Path(sys.executable).parent / "bastion"
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("BASTION_")
    }
    environment.update({f"BASTION_{name.upper()}": value for name, value in env.items()})
    process = await asyncio.create_subprocess_exec(
        str(command),
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


# -- JWKS ---------------------------------------------------------------------------------


async def test_jwks_is_404_under_hs256(client: httpx.AsyncClient) -> None:
    assert (await client.get("/.well-known/jwks.json")).status_code == 404


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
async def test_jwks_publishes_the_signing_key(start_server: ServerFactory, algorithm: str) -> None:
    server = await start_server(jwt_algorithm=algorithm)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        kid = header_of((await login(client))["access_token"])["kid"]
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [key["kid"] for key in keys] == [kid]
    assert keys[0]["alg"] == algorithm
    assert keys[0]["use"] == "sig"
    assert keys[0]["kty"] == ("OKP" if algorithm == "EdDSA" else "EC")


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
async def test_jwks_holds_no_private_key_material(
    start_server: ServerFactory, algorithm: str
) -> None:
    server = await start_server(jwt_algorithm=algorithm)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys
    for key in keys:
        assert "d" not in key
        assert set(key) <= {"kty", "crv", "x", "y", "kid", "alg", "use"}


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
async def test_access_token_verifies_outside_with_the_published_key(
    start_server: ServerFactory, algorithm: str
) -> None:
    server = await start_server(jwt_algorithm=algorithm)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user = await register(client)
        token = (await login(client))["access_token"]
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert header_of(token)["alg"] == algorithm
    assert header_of(token)["typ"] == "at+jwt"
    claims = verify_outside(jwks, token, algorithm)
    assert claims["sub"] == str(user["id"])
    assert claims["permissions"] == []


# -- persistence --------------------------------------------------------------------------


async def test_generated_secret_is_kept_private_in_the_data_directory(
    server: RunningServer,
) -> None:
    data_dir = server.bastion.settings.data_dir
    assert mode(data_dir / KEY_FILE) == 0o600
    assert mode(data_dir) == 0o700
    assert [key.algorithm for key in KeyFile(data_dir).read()] == ["HS256"]


@pytest.mark.parametrize("algorithm", ["HS256", "EdDSA", "ES256"])
async def test_generated_key_survives_a_restart(
    make_settings: SettingsFactory, start_server: ServerFactory, algorithm: str
) -> None:
    settings = await make_settings(jwt_algorithm=algorithm)
    before = await start_server(settings)
    async with httpx.AsyncClient(base_url=before.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
    after = await start_server(settings)
    async with httpx.AsyncClient(base_url=after.base_url, timeout=30) as client:
        assert (await client.get("/protected", headers=bearer(tokens))).status_code == 200
        again = await login(client)
    assert header_of(again["access_token"])["kid"] == header_of(tokens["access_token"])["kid"]


async def test_configured_secret_keys_hs256_with_its_utf8_bytes(
    start_server: ServerFactory,
) -> None:
    server = await start_server(secret_key=SECRET)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        token = (await login(client))["access_token"]
    claims = jwt.decode(
        token, SECRET.encode("utf-8"), algorithms=["HS256"], audience="bastion", issuer="bastion"
    )
    assert claims["iss"] == "bastion"


async def test_instances_sharing_a_configured_secret_accept_each_others_tokens(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    first = await start_server(secret_key=SECRET)
    second = await start_server(secret_key=SECRET, data_dir=tmp_path / "elsewhere")
    async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as client:
        await register(client)
        tokens = await login(client)
    async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as client:
        assert (await client.get("/protected", headers=bearer(tokens))).status_code == 200


# -- rotation -----------------------------------------------------------------------------


@dataclass
class Rotation:
    """A rotation by ``bastion keys rotate`` between two instances on one data directory.

    Attributes:
        old: Tokens issued before the rotation.
        http: A client of the instance started after it.
        new: Tokens issued by that instance.
        output: What the command printed.
        data_dir: The shared data directory.
    """

    old: dict[str, Any]
    http: httpx.AsyncClient
    new: dict[str, Any]
    output: str
    data_dir: Path


@pytest.fixture(scope="module")
async def rotation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rotation]:
    """Rotate an EdDSA key with the CLI between two instances on one data directory."""
    base = tmp_path_factory.mktemp("rotation")
    values: dict[str, Any] = {"data_dir": base / "data", "jwt_algorithm": "EdDSA", **UNLIMITED}
    settings = Settings(_env_file=None, **values)
    async with serving(settings) as before:
        await register(before)
        old = await login(before)
    status, output = await bastion_cli(
        "keys", "rotate", cwd=base, data_dir=str(settings.data_dir), jwt_algorithm="EdDSA"
    )
    assert status == 0, output
    async with serving(settings) as after:
        yield Rotation(old, after, await login(after), output, settings.data_dir)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Run one instance on ``settings`` for the block, then stop it."""
    stack: list[Callable[[], Awaitable[None]]] = []
    base_url = await _serve(create_app(settings), stack)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield http
    finally:
        for stop in reversed(stack):
            await stop()


async def test_instance_started_after_rotation_signs_with_the_new_key(rotation: Rotation) -> None:
    old_kid = header_of(rotation.old["access_token"])["kid"]
    new_kid = header_of(rotation.new["access_token"])["kid"]
    assert new_kid != old_kid
    assert new_kid in rotation.output
    response = await rotation.http.get("/protected", headers=bearer(rotation.new))
    assert response.status_code == 200


async def test_token_signed_before_rotation_still_verifies(rotation: Rotation) -> None:
    response = await rotation.http.get("/protected", headers=bearer(rotation.old))
    assert response.status_code == 200, response.text


async def test_jwks_after_rotation_lists_old_and_new_keys(rotation: Rotation) -> None:
    jwks = (await rotation.http.get("/.well-known/jwks.json")).json()
    kids = [key["kid"] for key in jwks["keys"]]
    assert kids == [
        header_of(rotation.old["access_token"])["kid"],
        header_of(rotation.new["access_token"])["kid"],
    ]
    claims = verify_outside(jwks, rotation.old["access_token"], "EdDSA")
    assert claims["iss"] == "bastion"


async def test_rotated_key_file_stays_private(rotation: Rotation) -> None:
    assert mode(rotation.data_dir / KEY_FILE) == 0o600
    assert len(KeyFile(rotation.data_dir).read()) == 2


async def test_generated_hs256_key_rotates_without_downtime(
    make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    settings = await make_settings()
    before = await start_server(settings)
    async with httpx.AsyncClient(base_url=before.base_url, timeout=30) as client:
        await register(client)
        old = await login(client)
    fresh = KeyFile(settings.data_dir).rotate("HS256", now=time.time(), retire_after=1020)
    after = await start_server(settings)
    async with httpx.AsyncClient(base_url=after.base_url, timeout=30) as client:
        new = await login(client)
        assert header_of(new["access_token"])["kid"] == fresh.kid
        assert (await client.get("/protected", headers=bearer(old))).status_code == 200


async def test_running_instance_signs_with_a_rotated_key_after_its_reload(
    make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    """The same instance, no restart: its periodic reload (every 15 s, well
    inside SPEC's 60 s) is run once here instead of waited for."""
    settings = await make_settings(jwt_algorithm="EdDSA")
    server = await start_server(settings)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        await register(client)
        old = await login(client)
        status, output = await bastion_cli(
            "keys",
            "rotate",
            cwd=settings.data_dir,
            data_dir=str(settings.data_dir),
            jwt_algorithm="EdDSA",
        )
        assert status == 0, output
        assert server.bastion.container.reload_keys()
        new = await login(client)
        assert header_of(new["access_token"])["kid"] in output
        assert header_of(new["access_token"])["kid"] != header_of(old["access_token"])["kid"]
        assert (await client.get("/protected", headers=bearer(old))).status_code == 200
        assert (await client.get("/protected", headers=bearer(new))).status_code == 200
        assert not server.bastion.container.reload_keys(), "nothing new to load"
