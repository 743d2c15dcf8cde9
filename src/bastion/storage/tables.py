"""Table definitions, shared by the stores and the Alembic migrations.

Times are epoch seconds in double-precision columns: one representation on
SQLite and PostgreSQL, and no naive-datetime surprises.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

#: SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(20), nullable=False),
    # The lower-cased forms carry the uniqueness, so "Alice" and "alice" race
    # for one index entry and the database, not a prior SELECT, picks the winner.
    Column("username_key", String(20), nullable=False, unique=True),
    Column("email", String(254), nullable=False),
    Column("email_key", String(254), nullable=False, unique=True),
    Column("age", Integer, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("permissions", Text, nullable=False, server_default="[]"),
    Column("token_version", Integer, nullable=False, server_default="0"),
    # Bumped with every change of what a session is opened with (password,
    # permissions, factors); opening or refreshing a session checks it.
    Column("credential_version", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("email_verified", Boolean, nullable=False, server_default=false()),
    # Never reuse a deleted user's id (revocations and events refer to it).
    sqlite_autoincrement=True,
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    # Revision 0004 (mfa): what the session list shows.
    Column("last_used_at", Float, nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("amr", String(64), nullable=False, server_default="[]"),
    Index("ix_sessions_user_id", "user_id"),
    # Revision 0006: the housekeeping run picks expired and revoked sessions.
    Index("ix_sessions_expires_at", "expires_at"),
    Index("ix_sessions_revoked_at", "revoked_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("session_id", String(64), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index("ix_refresh_tokens_session_id", "session_id"),
    # Revision 0006: the housekeeping run picks expired refresh tokens.
    Index("ix_refresh_tokens_expires_at", "expires_at"),
)

device_tokens = Table(
    "device_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=False),
    Index("ix_device_tokens_user_id", "user_id"),
)

revocations = Table(
    "revocations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject", String(80), nullable=False),
    Column("min_version", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_revocations_expires_at", "expires_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("type", String(40), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("user_id", BigInteger, nullable=True),
    Column("username", String(64), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index("ix_events_type_id", "type", "id"),
    Index("ix_events_user_id_id", "user_id", "id"),
    # Revision 0005: the admin pages filter by address and count by time.
    Index("ix_events_ip_id", "ip", "id"),
    Index("ix_events_type_at", "type", "at"),
)

#: Revision 0005. A signed-in browser: the cookie's digest, never the cookie.
#: Each belongs to one session (refresh-token family) opened by the page
#: login, so revoking that session signs the browser out too.
browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("session_id", String(64), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Index("ix_browser_sessions_session_id", "session_id"),
    Index("ix_browser_sessions_user_id", "user_id"),
    Index("ix_browser_sessions_expires_at", "expires_at"),
)

# -- mail and one-time tokens (migration 0003) ------------------------------------

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # What to send: a template name; intents ("reset", "verify") are resolved
    # to a user by the courier, never by the request (no enumeration).
    Column("kind", String(40), nullable=False),
    Column("user_id", BigInteger, nullable=True),
    # The normalised address an intent names (lower-cased), for the per-address
    # limit and as the recipient when there is no user.
    Column("address", String(254), nullable=True),
    Column("data", Text, nullable=False, server_default="{}"),
    # The composed mail, sealed (AES-GCM) when it carries a token; erased once
    # sent or abandoned.
    Column("payload", Text, nullable=True),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", Float, nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_outbox_kind_address_created_at", "kind", "address", "created_at"),
    Index("ix_outbox_finished_at", "finished_at"),
)

onetime_tokens = Table(
    "onetime_tokens",
    metadata,
    # HMAC-SHA256 of the token under a key of the data directory: a copy of
    # the database alone does not let anyone test guesses.
    Column("digest", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index("ix_onetime_tokens_user_id_purpose", "user_id", "purpose"),
    Index("ix_onetime_tokens_expires_at", "expires_at"),
)

# -- revision 0004: multi-factor authentication and passkeys -------------------

totp_factors = Table(
    "totp_factors",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # AES-GCM ciphertext of the shared secret, never the secret itself.
    Column("secret", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    # Null while the enrolment is pending.
    Column("confirmed_at", Float, nullable=True),
    # The highest time step accepted so far: a code is good at most once.
    Column("last_step", BigInteger, nullable=False, server_default="-1"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index("ix_recovery_codes_user_id", "user_id"),
)

passkeys = Table(
    "passkeys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # base64url, as the browser sends it; at most 1023 bytes raw (WebAuthn §5.4.3).
    Column("credential_id", String(1400), nullable=False, unique=True),
    Column("public_key", Text, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("user_handle", String(128), nullable=False),
    Column("name", String(64), nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Index("ix_passkeys_user_id", "user_id"),
)

mfa_challenges = Table(
    "mfa_challenges",
    metadata,
    # A digest of the mfa_token or of the WebAuthn challenge, never the value.
    Column("key", String(96), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Index("ix_mfa_challenges_expires_at", "expires_at"),
)
