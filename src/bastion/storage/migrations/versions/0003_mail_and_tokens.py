"""Mail outbox, one-time tokens, and users.email_verified.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("email_verified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("address", sa.String(254), nullable=True),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", sa.Float, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index(
        "ix_outbox_kind_address_created_at", "outbox", ["kind", "address", "created_at"]
    )
    op.create_index("ix_outbox_finished_at", "outbox", ["finished_at"])
    op.create_table(
        "onetime_tokens",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_onetime_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_onetime_tokens_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_onetime_tokens_user_id_purpose", "onetime_tokens", ["user_id", "purpose"])
    op.create_index("ix_onetime_tokens_expires_at", "onetime_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("onetime_tokens")
    op.drop_table("outbox")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified")
