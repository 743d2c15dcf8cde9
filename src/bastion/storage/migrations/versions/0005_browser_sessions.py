"""Browser sessions of the web pages; event indexes for the admin pages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "browser_sessions",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_browser_sessions"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_browser_sessions_session_id_sessions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_browser_sessions_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_browser_sessions_session_id", "browser_sessions", ["session_id"])
    op.create_index("ix_browser_sessions_user_id", "browser_sessions", ["user_id"])
    op.create_index("ix_browser_sessions_expires_at", "browser_sessions", ["expires_at"])
    # The events page filters by address; the charts count by type over a
    # time range, which (type, at) answers from the index alone.
    op.create_index("ix_events_ip_id", "events", ["ip", "id"])
    op.create_index("ix_events_type_at", "events", ["type", "at"])


def downgrade() -> None:
    op.drop_index("ix_events_type_at", "events")
    op.drop_index("ix_events_ip_id", "events")
    op.drop_table("browser_sessions")
