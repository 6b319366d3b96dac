"""reruns: a run may name the run it repeats (``labkit rerun``) and the branch its Binder export was
pushed to (``labkit export --push``)

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("rerun_of", sa.String(length=36), nullable=True))
    op.create_index("ix_runs_rerun_of", "runs", ["rerun_of"])
    op.add_column("runs", sa.Column("binder_ref", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "binder_ref")
    op.drop_index("ix_runs_rerun_of", table_name="runs")
    op.drop_column("runs", "rerun_of")
