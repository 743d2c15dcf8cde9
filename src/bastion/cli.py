"""The ``bastion`` command."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from bastion.audit.command import audit_command
from bastion.config import Settings

app = typer.Typer(
    help="Bastion: secure-by-default users and authentication.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# The command module imports only Typer; the audit loads when it runs.
app.command("audit")(audit_command)
mail_app = typer.Typer(help="Mail delivery.", no_args_is_help=True)
app.add_typer(mail_app, name="mail")

_ENV_HELP = """
Configuration comes from BASTION_* environment variables or a .env file:
BASTION_DATA_DIR, BASTION_DATABASE_URL, BASTION_REDIS_URL, BASTION_SECRET_KEY,
BASTION_JWT_ALGORITHM, BASTION_ISSUER, BASTION_AUDIENCE, BASTION_ACCESS_TOKEN_TTL,
BASTION_REFRESH_TOKEN_TTL, BASTION_REFRESH_REUSE_INTERVAL, BASTION_RATE_LIMIT,
BASTION_LOGIN_RATE_LIMIT, BASTION_REGISTER_RATE_LIMIT, BASTION_TRUSTED_PROXIES,
BASTION_PASSWORD_HASHER, BASTION_PASSWORD_MIN_LENGTH, BASTION_DOCS,
BASTION_CORS_ORIGINS, BASTION_X_XSS_PROTECTION, BASTION_METRICS_PUBLIC,
BASTION_EVENT_RETENTION_DAYS,
BASTION_PUBLIC_URL, BASTION_SMTP_URL, BASTION_MAIL_FROM, BASTION_MAIL_SECRET,
BASTION_EMAIL_VERIFICATION, BASTION_RESET_TOKEN_TTL, BASTION_VERIFY_TOKEN_TTL,
BASTION_RECOVERY_RATE_LIMIT, BASTION_WEB.
See the README for defaults.
"""


def load_settings() -> Settings:
    """Settings from the environment, or exit with one line per wrong variable."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "BASTION_" + "_".join(str(part) for part in error["loc"]).upper()
            if not error["loc"]:
                name = "configuration"
            typer.echo(f"bastion: invalid {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@app.command(epilog=_ENV_HELP)
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from bastion.errors import BastionError
    from bastion.serving import server_stack

    settings = load_settings()
    if workers > 1 and not settings.redis_url:
        typer.echo(
            "bastion: --workers > 1 needs BASTION_REDIS_URL: in-process limits and "
            "revocations would not be shared between workers",
            err=True,
        )
        raise typer.Exit(2)
    try:
        from bastion.bootstrap import build

        # Validate the data directory and keys before forking workers.
        build(settings)
    except BastionError as exc:
        typer.echo(f"bastion: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        _share_metrics(settings.data_dir / "metrics")
    stack = server_stack()
    if settings.smtp_url is None:
        maildir = (settings.data_dir / "mail").resolve()
        typer.echo(f"bastion: mail goes to the Maildir {maildir} (BASTION_SMTP_URL is unset)")
    uvicorn.run(
        "bastion.cli:_service_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        # uvloop + httptools with TCP_NODELAY, or the asyncio + h11 fallback.
        loop=stack.loop,
        http=stack.http,
        # Client addresses are our decision (BASTION_TRUSTED_PROXIES); uvicorn
        # must not rewrite them from X-Forwarded-For on its own.
        proxy_headers=False,
        forwarded_allow_ips="",
        log_level="warning",
    )


def _share_metrics(directory: Path) -> None:
    """Give the workers one fresh directory for their Prometheus values."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _service_app() -> object:
    from bastion.api.app import create_app
    from bastion.serving import freeze_heap_after_startup

    app = create_app(load_settings())
    freeze_heap_after_startup(app)
    return app


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic)."""
    from bastion.storage.database import create_engine
    from bastion.storage.migrate import upgrade, upgrade_sqlite

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await (upgrade_sqlite if settings.is_sqlite else upgrade)(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo("bastion: database is at the latest revision")


@app.command()
def prune() -> None:
    """Run the housekeeping now and say what it removed."""
    from bastion.bootstrap import build
    from bastion.errors import BastionError
    from bastion.storage.migrate import upgrade_sqlite

    settings = load_settings()

    async def run() -> dict[str, int]:
        container = build(settings)
        try:
            if settings.is_sqlite:
                await upgrade_sqlite(container.engine)
            # On demand, every step to the end; the steps are idempotent, so
            # a background run elsewhere at the same time does no harm.
            return await container.housekeeper.prune_all()
        finally:
            await container.stop()

    try:
        removed = asyncio.run(run())
    except BastionError as exc:
        typer.echo(f"bastion: {exc.message}", err=True)
        raise typer.Exit(1) from None
    for kind, count in removed.items():
        typer.echo(f"bastion: removed {count} {kind}")


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="The admin's username.")],
    email: Annotated[str, typer.Option(help="The admin's email address.")],
    age: Annotated[int, typer.Option(help="The admin's age.")] = 30,
) -> None:
    """Create a user holding the admin permission; the password is read from stdin."""
    from bastion.admin import create_admin_user

    settings = load_settings()
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            typer.echo("bastion: the passwords differ", err=True)
            raise typer.Exit(1)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user_id = asyncio.run(create_admin_user(settings, username, email, age, password))
    except ValueError as exc:
        typer.echo(f"bastion: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"bastion: created admin {username!r} with id {user_id}")


@mail_app.command("test")
def mail_test(
    address: Annotated[str, typer.Argument(help="Where to send the test mail.")],
) -> None:
    """Queue a test mail to ADDRESS, send it now, and report how it went."""
    from bastion.admin import send_test_mail

    settings = load_settings()
    try:
        sent, report = asyncio.run(send_test_mail(settings, address))
    except ValueError as exc:
        typer.echo(f"bastion: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"bastion: {report}", err=not sent)
    if not sent:
        raise typer.Exit(1)


@keys_app.command("rotate")
def rotate_keys() -> None:
    """Add a new signing key; running instances sign with it within 60 s."""
    import time

    from bastion.storage.keyfile import KeyFile

    settings = load_settings()
    if settings.secret_key is not None and settings.jwt_algorithm == "HS256":
        typer.echo(
            "bastion: BASTION_SECRET_KEY is set, so the signing key is the configured one; "
            "unset it to use rotated keys from the data directory",
            err=True,
        )
        raise typer.Exit(2)
    key = KeyFile(settings.data_dir).rotate(
        settings.jwt_algorithm,
        now=time.time(),
        retire_after=settings.access_token_ttl + 120,
    )
    typer.echo(f"bastion: new signing key {key.kid} ({key.algorithm})")


def main() -> None:
    """Console-script entry point."""
    app()
