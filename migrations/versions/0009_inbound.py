"""inbound: bounces, complaints and mailto unsubscribes that come back, and what they changed

Revision ID: 0009
Revises: 0006 (the lead re-chains this after 0007 and 0008 at merge: they were written in
parallel and touch other tables)
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _contact_columns():
    return (
        sa.Column("bounced_at", sa.DateTime(), nullable=True),
        sa.Column("bounce_code", sa.String(length=16), nullable=True),
        sa.Column("bounce_diagnostic", sa.String(length=300), nullable=True),
        sa.Column("bounce_score", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_soft_bounce_on", sa.Date(), nullable=True),
        sa.Column("complained_at", sa.DateTime(), nullable=True),
    )


def upgrade():
    with op.batch_alter_table("contacts") as batch:
        for column in _contact_columns():
            batch.add_column(column)
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("feedback", sa.String(length=16), nullable=True))
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_inbound_messages_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_inbound_messages_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("digest", name=op.f("uq_inbound_messages_digest")),
    )
    op.create_index(
        "ix_inbound_messages_received_at", "inbound_messages", ["received_at"], unique=False
    )
    op.create_index("ix_inbound_messages_contact", "inbound_messages", ["contact_id"], unique=False)


def downgrade():
    op.drop_index("ix_inbound_messages_contact", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_received_at", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("feedback")
    with op.batch_alter_table("contacts") as batch:
        for column in reversed(_contact_columns()):
            batch.drop_column(column.name)
