"""Indexes for the housekeeping run: expired sessions and refresh tokens.

The pruners pick expired sessions (or ones revoked long enough ago) and
expired refresh tokens in batches; without these indexes each batch read the
whole table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_index("ix_sessions_revoked_at", "sessions", ["revoked_at"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_expires_at", "refresh_tokens")
    op.drop_index("ix_sessions_revoked_at", "sessions")
    op.drop_index("ix_sessions_expires_at", "sessions")
