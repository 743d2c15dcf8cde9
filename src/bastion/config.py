"""Bastion's settings: one typed, frozen object built at the edge and passed down.

Every field maps to a ``BASTION_*`` environment variable (or a line of a ``.env``
file). The names are part of the public contract (SPEC.md, "Configuration").
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: NIST SP 800-63B-4 allows verifiers to lower the minimum to 8, never below.
ABSOLUTE_MIN_PASSWORD_LENGTH = 8
#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    """Validated configuration of one Bastion instance.

    Build it once (``Settings()`` reads the environment) and hand it to
    :class:`bastion.Bastion` or :func:`bastion.create_app`. Nothing in Bastion
    reads the environment after that.
    """

    model_config = SettingsConfigDict(
        env_prefix="BASTION_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # -- storage ---------------------------------------------------------------
    data_dir: Path = Path("./bastion-data")
    """Directory for the SQLite file and generated keys; created with mode 0700."""

    database_url: str | None = None
    """SQLAlchemy async URL. Unset means a SQLite file in ``data_dir``;
    ``postgresql+asyncpg://...`` for PostgreSQL."""

    redis_url: str | None = None
    """Redis URL for shared limits and revocations. Unset means in-process state."""

    event_retention_days: int = Field(default=90, ge=1, le=36_500)
    """Days security events are kept; older ones are removed by the
    housekeeping (SPEC, "Housekeeping")."""

    # -- tokens ----------------------------------------------------------------
    secret_key: SecretStr | None = None
    """HS256 signing secret, at least 32 UTF-8 bytes. Unset: generated once and
    kept (mode 0600) in ``data_dir``."""

    jwt_algorithm: Literal["HS256", "EdDSA", "ES256"] = "HS256"
    """Signing algorithm of access tokens. Asymmetric ones publish a JWKS."""

    issuer: str = Field(default="bastion", min_length=1, max_length=255)
    """``iss`` claim put in and demanded of access tokens (at most 255
    characters, so a token stays under the 8 KiB verify limit)."""

    audience: str = Field(default="bastion", min_length=1, max_length=255)
    """``aud`` claim put in and demanded of access tokens (at most 255 characters)."""

    access_token_ttl: int = Field(default=900, ge=30, le=86_400)
    """Access token lifetime in seconds."""

    refresh_token_ttl: int = Field(default=1_209_600, ge=60, le=31_536_000)
    """Refresh token lifetime in seconds."""

    refresh_reuse_interval: int = Field(default=10, ge=0, le=300)
    """Seconds after its first use during which a spent refresh token still
    yields a fresh pair (two tabs refreshing at once). ``0`` is strict."""

    # -- abuse protection ------------------------------------------------------
    rate_limit: str = "100/minute"
    """Per-client budget across every route except the probes."""

    login_rate_limit: str = "10/minute"
    """Per-client budget of ``POST /auth/token``."""

    register_rate_limit: str = "5/minute"
    """Per-client budget of ``POST /users``."""

    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()
    """Peers whose ``X-Forwarded-For`` is believed (comma-separated IPs/CIDRs).
    Empty: the direct peer address is the client, whatever headers say."""

    throttle_exempt: Annotated[tuple[Network, ...], NoDecode] = ()
    """Networks spared the per-client login bucket (comma-separated CIDRs),
    e.g. an office NAT. Per-account throttling still applies to them."""

    # -- passwords -------------------------------------------------------------
    password_hasher: Literal["argon2", "bcrypt"] = "argon2"  # noqa: S105 - a name
    """Algorithm for new hashes; both always verify."""

    password_min_length: int = Field(default=15, ge=ABSOLUTE_MIN_PASSWORD_LENGTH, le=1024)
    """Minimum password length in code points (NIST SP 800-63B-4)."""

    # -- HTTP surface ----------------------------------------------------------
    docs: bool = True
    """Serve ``/docs`` and ``/openapi.json``."""

    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins allowed by CORS (comma-separated). ``*`` is refused."""

    x_xss_protection: Literal["0", "1; mode=block"] = "0"
    """Value of ``X-XSS-Protection``; OWASP advises ``0``."""

    metrics_public: bool = False
    """Serve ``/metrics`` to anyone; otherwise it needs ``admin``."""

    # -- mail and account recovery ----------------------------------------------
    public_url: str = "http://localhost:8000"
    """Where users reach Bastion: links in mail, and the WebAuthn RP ID and
    origin unless those are set."""

    smtp_url: SecretStr | None = None
    """``smtp://user:pass@host:port`` (STARTTLS when offered; add
    ``?starttls=require`` to refuse clear text) or ``smtps://`` (implicit TLS).
    Unset: mail is written to the Maildir ``data_dir/mail/``."""

    mail_from: str = "Bastion <no-reply@localhost>"
    """``From`` of every mail."""

    email_verification: Literal["off", "optional", "required"] = "optional"
    """``optional``: a verification mail at registration; ``required``: an
    unverified address cannot log in; ``off``: no mail at registration."""

    reset_token_ttl: int = Field(default=1800, ge=60, le=86_400)
    """Lifetime of a password-reset token in seconds."""

    verify_token_ttl: int = Field(default=86_400, ge=60, le=2_592_000)
    """Lifetime of an email verification (or change) token in seconds."""

    recovery_rate_limit: str = "5/minute"
    """Per-client budget shared by ``POST /auth/password/forgot`` and
    ``POST /auth/email/verify/resend``."""

    mail_secret: SecretStr | None = None
    """Key material (at least 32 bytes) for one-time token digests and the
    encryption of queued mail. Unset: generated once and kept (mode 0600) in
    ``data_dir``. Several instances must share it (or the data directory)."""

    # -- multi-factor authentication (mfa) ------------------------------------
    webauthn_rp_id: str | None = None
    """WebAuthn relying-party id. Unset: the host of ``public_url``."""

    webauthn_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins a WebAuthn ceremony may come from (comma-separated). Empty: the
    origin of ``public_url``."""

    mfa_encryption_key: SecretStr | None = None
    """Base64 of 32 bytes: the AES-256-GCM key of TOTP secrets at rest. Unset:
    generated once and kept (mode 0600) in ``data_dir``; set it when several
    instances do not share a data directory."""

    web: bool = True
    """Serve the web pages (``/account``, ``/admin``); ``false``: the JSON API only."""

    @field_validator("trusted_proxies", "throttle_exempt", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",") if item.strip()]
            return tuple(ipaddress.ip_network(item, strict=False) for item in items)
        return value

    @field_validator("webauthn_origins", mode="before")
    @classmethod
    def _parse_webauthn_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip().rstrip("/") for item in value.split(",") if item.strip())
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in value:
            raise ValueError("a wildcard origin is refused; list the origins")
        return value

    @field_validator("rate_limit", "login_rate_limit", "register_rate_limit", "recovery_rate_limit")
    @classmethod
    def _parse_rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate such as '100/minute': {value!r}") from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL such as https://auth.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or a fragment")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("use smtp://[user:pass@]host[:port] or smtps://...")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("the port is not a number") from None
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"starttls"} or query.get("starttls", ["require"]) != ["require"]:
            raise ValueError("the only query parameter understood is ?starttls=require")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        from email.utils import parseaddr

        if "\r" in value or "\n" in value or "@" not in parseaddr(value)[1]:
            raise ValueError("must be an address such as 'Bastion <no-reply@example.com>'")
        return value

    @field_validator("secret_key", "mail_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_BYTES} bytes")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _refresh_outlives_access(self) -> Settings:
        if self.refresh_token_ttl < self.access_token_ttl:
            raise ValueError("BASTION_REFRESH_TOKEN_TTL must not be shorter than the access TTL")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bastion.sqlite3').resolve()}"

    @property
    def resolved_webauthn_rp_id(self) -> str:
        """The RP ID: configured, or the host of ``public_url`` (W3C WebAuthn §5.1.3)."""
        return self.webauthn_rp_id or (urlsplit(self.public_url).hostname or "localhost")

    @property
    def resolved_webauthn_origins(self) -> tuple[str, ...]:
        """The accepted origins: configured, or the origin of ``public_url``."""
        if self.webauthn_origins:
            return self.webauthn_origins
        parts = urlsplit(self.public_url)
        return (f"{parts.scheme}://{parts.netloc}",)

    @property
    def is_sqlite(self) -> bool:
        """Whether storage is the embedded SQLite file."""
        return self.resolved_database_url.startswith("sqlite")
