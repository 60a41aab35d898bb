"""campaign content: a name, Markdown or HTML, a preheader per variant, archiving

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "content_format",
                sa.Enum(
                    "html",
                    "markdown",
                    name="content_format",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=False,
                server_default="html",
            )
        )
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("content_format", server_default=None)
    with op.batch_alter_table("campaign_variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preheader", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("campaign_variants", schema=None) as batch_op:
        batch_op.drop_column("preheader")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
        batch_op.drop_column("content_format")
        batch_op.drop_column("name")
