"""click figures: a campaign's track_clicks setting and link_clicks (counts, never who)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("track_clicks", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "link_clicks",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("link", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("clicks >= 0", name=op.f("ck_link_clicks_clicks_not_negative")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_link_clicks_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "link", name=op.f("pk_link_clicks")),
    )


def downgrade():
    op.drop_table("link_clicks")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("track_clicks")
