"""users and visibility: version visibility, collaborators, moderators, API tokens

Versions that existed before this revision become public: every user of the lab could read them
until now, so publishing them keeps the lab working as it did. New versions are private until
their owner publishes them (see docs/permissions.md).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite supports it with a default), not a batch copy-and-drop of the table:
    # dropping ``users`` or ``versions`` fails while other tables' foreign keys point at their rows.
    op.add_column("users", sa.Column("is_moderator", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("versions", sa.Column("visibility", sa.String(length=20), server_default="private",
                                        nullable=False))
    op.execute("UPDATE versions SET visibility = 'public'")
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "collaborators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entity_id", "user_id"),
    )
    op.create_index("ix_collaborators_entity_id", "collaborators", ["entity_id"])
    op.create_index("ix_collaborators_user_id", "collaborators", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_collaborators_user_id", table_name="collaborators")
    op.drop_index("ix_collaborators_entity_id", table_name="collaborators")
    op.drop_table("collaborators")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    with op.batch_alter_table("versions") as batch_op:
        batch_op.drop_column("visibility")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("is_moderator")
