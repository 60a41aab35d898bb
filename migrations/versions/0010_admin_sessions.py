"""admin sessions: a generation per staff account (revocable sessions), the sign-in brake

Revision ID: 0010
Revises: 0006

Developed on 0006 while 0007-0009 were written in parallel; the merge re-chains it after 0009.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("admin_users") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "sign_in_brakes",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_started_at", sa.DateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_brakes")),
    )
    op.create_index("ix_sign_in_brakes_window_started_at", "sign_in_brakes", ["window_started_at"])


def downgrade():
    op.drop_index("ix_sign_in_brakes_window_started_at", table_name="sign_in_brakes")
    op.drop_table("sign_in_brakes")
    with op.batch_alter_table("admin_users") as batch:
        batch.drop_column("session_generation")
