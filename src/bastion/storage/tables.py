"""Table definitions, shared by the stores and the Alembic migrations.

Times are epoch seconds in double-precision columns: one representation on
SQLite and PostgreSQL, and no naive-datetime surprises.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
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
    Column("created_at", Float, nullable=False),
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
    Index("ix_sessions_user_id", "user_id"),
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
