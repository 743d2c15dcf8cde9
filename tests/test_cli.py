"""The ``bastion`` command, and the data directory it and the service share."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from typer.testing import CliRunner

from bastion import Settings, create_app
from bastion.cli import app as cli_app
from tests.conftest import (
    GOOD_PASSWORD,
    ServerFactory,
    SettingsFactory,
    _serve,
    bearer,
    login,
    register,
)

BASTION = str(Path(sys.executable).with_name("bastion"))
#: SPEC "Configuration": these names are part of the contract.
SPEC_VARIABLES = [
    "BASTION_DATA_DIR",
    "BASTION_DATABASE_URL",
    "BASTION_REDIS_URL",
    "BASTION_SECRET_KEY",
    "BASTION_JWT_ALGORITHM",
    "BASTION_ISSUER",
    "BASTION_AUDIENCE",
    "BASTION_ACCESS_TOKEN_TTL",
    "BASTION_REFRESH_TOKEN_TTL",
    "BASTION_REFRESH_REUSE_INTERVAL",
    "BASTION_RATE_LIMIT",
    "BASTION_LOGIN_RATE_LIMIT",
    "BASTION_REGISTER_RATE_LIMIT",
    "BASTION_TRUSTED_PROXIES",
    "BASTION_PASSWORD_HASHER",
    "BASTION_PASSWORD_MIN_LENGTH",
    "BASTION_DOCS",
    "BASTION_CORS_ORIGINS",
    "BASTION_X_XSS_PROTECTION",
    "BASTION_METRICS_PUBLIC",
    "BASTION_WEB",
]


def clean_env(**variables: str) -> dict[str, str]:
    """The environment of a child process: no BASTION_* of the machine, wide help output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(COLUMNS="200", **variables)
    return env


Outcome = tuple[int, str, str]


async def run_bastion(*args: str, env: dict[str, str], stdin: bytes = b"") -> Outcome:
    """Run the installed ``bastion`` script; (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        BASTION,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def mode(path: Path) -> int:
    """Permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


# -- help ----------------------------------------------------------------------------


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli_app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("serve", "migrate", "create-admin", "keys"):
        assert re.search(rf"\b{command}\b", result.output), command


def test_serve_help_lists_every_configuration_variable() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listed = set(re.findall(r"BASTION_[A-Z_]+[A-Z]", result.output))
    assert set(SPEC_VARIABLES) <= listed
    for option in ("--host", "--port", "--workers"):
        assert option in result.output


def test_keys_help_lists_rotate() -> None:
    result = CliRunner().invoke(cli_app, ["keys", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "rotate" in result.output


# -- refusing to start ---------------------------------------------------------------


async def test_serve_with_a_short_secret_exits_with_one_line_naming_it(tmp_path: Path) -> None:
    secret = "too-short-secret-31-bytes-long!"
    assert len(secret.encode()) == 31
    env = clean_env(BASTION_SECRET_KEY=secret, BASTION_DATA_DIR=str(tmp_path / "data"))
    # The installed script in a process of its own: the exit status and stderr are real.
    status, out, err = await run_bastion("serve", "--port", "0", env=env)
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "BASTION_SECRET_KEY" in lines[0]
    assert secret not in out + err


def test_serve_with_an_invalid_setting_names_the_variable(tmp_path: Path) -> None:
    env = {"BASTION_PASSWORD_MIN_LENGTH": "7", "BASTION_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(cli_app, ["serve", "--port", "0"], env=env)
    assert result.exit_code != 0
    assert "BASTION_PASSWORD_MIN_LENGTH" in result.output


# -- create-admin --------------------------------------------------------------------


async def test_create_admin_reads_the_password_from_stdin_and_the_admin_can_log_in(
    make_settings: SettingsFactory, start_server: ServerFactory, tmp_path: Path
) -> None:
    settings = await make_settings(data_dir=tmp_path / "admin-data")
    env = clean_env(BASTION_DATA_DIR=str(settings.data_dir))
    if settings.database_url:
        env["BASTION_DATABASE_URL"] = settings.database_url
    status, out, err = await run_bastion(
        "create-admin",
        "--username",
        "chief",
        "--email",
        "chief@example.com",
        env=env,
        stdin=(GOOD_PASSWORD + "\n").encode(),
    )
    assert status == 0, err
    assert GOOD_PASSWORD not in out + err
    server = await start_server(settings)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        tokens = await login(http, "chief")
        me = (await http.get("/users/me", headers=bearer(tokens))).json()
    assert me["username"] == "chief"
    assert me["email"] == "chief@example.com"
    assert me["permissions"] == ["admin"]


def test_create_admin_refuses_a_weak_password_without_echoing_it(tmp_path: Path) -> None:
    weak = "short-pass-1"
    result = CliRunner().invoke(
        cli_app,
        ["create-admin", "--username", "chief", "--email", "chief@example.com"],
        input=weak + "\n",
        env={"BASTION_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code != 0
    assert "15" in result.output  # says why: the minimum length
    assert weak not in result.output


def test_create_admin_refuses_an_invalid_username(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app,
        ["create-admin", "--username", "no spaces", "--email", "chief@example.com"],
        input=GOOD_PASSWORD + "\n",
        env={"BASTION_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code != 0
    assert "username" in result.output


# -- the data directory --------------------------------------------------------------


async def test_data_dir_is_created_0700_with_keys_json_0600(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "fresh" / "data"
    old_umask = os.umask(0o022)
    try:
        await start_server(data_dir=data_dir)
    finally:
        os.umask(old_umask)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "keys.json") == 0o600


async def test_an_open_data_dir_is_closed_to_0700(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    await start_server(data_dir=data_dir)
    assert mode(data_dir) == 0o700


async def test_keys_and_tokens_survive_a_restart(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings: Settings = await make_settings(data_dir=tmp_path / "data")
    keys = settings.data_dir / "keys.json"

    async def serve() -> tuple[str, Callable[[], Awaitable[None]]]:
        stack: list[Callable[[], Awaitable[None]]] = []
        base_url = await _serve(create_app(settings), stack)
        return base_url, stack[0]

    base_url, stop = await serve()
    try:
        async with httpx.AsyncClient(base_url=base_url) as http:
            await register(http, "survivor")
            tokens = await login(http, "survivor")
    finally:
        await stop()
    before = keys.read_bytes()

    base_url, stop = await serve()
    try:
        async with httpx.AsyncClient(base_url=base_url) as http:
            response = await http.get("/users/me", headers=bearer(tokens))
    finally:
        await stop()
    assert keys.read_bytes() == before
    assert response.status_code == 200
    assert response.json()["username"] == "survivor"


def test_migrate_brings_a_new_database_to_the_latest_revision(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["migrate"], env={"BASTION_DATA_DIR": str(tmp_path / "data")}
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "bastion.sqlite3").is_file()
