"""accounts: passwords, roles, disabled users, named expiring tokens, sign-in sessions

Existing tokens keep working: they get the name ``token-<id>`` and no expiry. No existing user gets a
password or a new role; the lab's operator grants them (`labkit user ...`, docs/permissions.md).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, as in 0003: a batch copy of ``users`` fails while foreign keys point at it.
    op.add_column("users", sa.Column("password_hash", sa.String(length=255), nullable=True))
    for flag in ("is_admin", "is_protocol_author", "disabled"):
        op.add_column("users", sa.Column(flag, sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("api_tokens", sa.Column("name", sa.String(length=100), server_default="", nullable=False))
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE api_tokens SET name = 'token-' || CAST(id AS VARCHAR(20))")
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_hash"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    with op.batch_alter_table("api_tokens") as batch_op:
        for column in ("last_used_at", "expires_at", "name"):
            batch_op.drop_column(column)
    with op.batch_alter_table("users") as batch_op:
        for column in ("disabled", "is_protocol_author", "is_admin", "password_hash"):
            batch_op.drop_column(column)
