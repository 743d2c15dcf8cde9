"""Credential versions and known-device tokens.

``users.credential_version`` is bumped in the same transaction as every
change to what a session is opened with (password, permissions, factors),
and checked in the transaction that opens or refreshes a session, so a login
that read the account before such a change cannot finish after it.
``device_tokens`` holds the digests of the known-device tokens of OWASP's
"device cookies": each is bound to one account and has its own failure budget.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch rebuild: rebuilding ``users`` on
    # SQLite with foreign keys on would cascade into sessions.
    op.add_column(
        "users", sa.Column("credential_version", sa.Integer, nullable=False, server_default="0")
    )
    op.create_table(
        "device_tokens",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_device_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_device_tokens_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_device_tokens_user_id", "device_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("device_tokens")
    op.drop_column("users", "credential_version")
